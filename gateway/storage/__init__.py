"""Where tender keeps objects: code archives, uploaded inputs, outputs, datastore files."""

from __future__ import annotations

from gateway.storage.base import CHUNK_SIZE, MAX_LIST_LIMIT, ObjectInfo, ObjectPage, Storage
from gateway.storage.errors import (
    InvalidKeyError,
    InvalidPartError,
    KeyConflictError,
    ObjectNotFoundError,
    StorageUnavailableError,
    UploadNotFoundError,
)
from gateway.storage.keys import check_key, check_prefix
from gateway.storage.local import LocalStorage

__all__ = [
    "CHUNK_SIZE",
    "MAX_LIST_LIMIT",
    "InvalidKeyError",
    "InvalidPartError",
    "KeyConflictError",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectPage",
    "Storage",
    "StorageUnavailableError",
    "UploadNotFoundError",
    "check_key",
    "check_prefix",
]
