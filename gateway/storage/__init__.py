"""Where tender keeps objects: code archives, uploaded inputs, outputs, datastore files."""

from __future__ import annotations

from gateway.storage.base import CHUNK_SIZE, MAX_LIST_LIMIT, ObjectInfo, ObjectPage, Storage
from gateway.storage.errors import (
    InvalidKeyError,
    KeyConflictError,
    ObjectNotFoundError,
    StorageUnavailableError,
)
from gateway.storage.keys import check_key, check_prefix
from gateway.storage.local import LocalStorage

__all__ = [
    "CHUNK_SIZE",
    "MAX_LIST_LIMIT",
    "InvalidKeyError",
    "KeyConflictError",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectPage",
    "Storage",
    "StorageUnavailableError",
    "check_key",
    "check_prefix",
]
