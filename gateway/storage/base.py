"""The storage interface: objects under relative keys, as in an S3 bucket.

Keys look like ``pipelines/<name>/code.tar.gz``, ``inputs/<id>/<name>``,
``executions/<workflow>/<step>/<output>`` and ``datastore/<path>`` (see ``compiler.keys``), and
are checked by ``gateway.storage.keys.check_key``. Presigned URLs are not part of the interface:
an S3 implementation signs its own; for the local one the gateway serves URLs it signs itself
(``gateway.signed_urls``, ``gateway.datastore``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["CHUNK_SIZE", "MAX_LIST_LIMIT", "ObjectInfo", "ObjectPage", "Storage"]

CHUNK_SIZE = 256 * 1024
MAX_LIST_LIMIT = 1000  # S3's largest page


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # timezone-aware, UTC


@dataclass(frozen=True)
class ObjectPage:
    items: list[ObjectInfo] = field(default_factory=list)
    next_token: str | None = None
    """Pass it as ``continuation_token`` for the next page; None on the last page."""


class Storage(Protocol):
    """Objects under relative keys. Writes are atomic: a reader sees the whole object or none.

    Raises InvalidKeyError for a bad key or prefix, ObjectNotFoundError for a missing object,
    KeyConflictError where the backend cannot hold both ``a`` and ``a/b``.
    """

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    async def put_file(self, key: str, source: Path | BinaryIO) -> ObjectInfo:
        """Copy from a path, or from a file object's current position to its end."""
        ...

    async def open(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The object's content in chunks; a missing object raises here, before any chunk."""
        ...

    async def read_bytes(self, key: str) -> bytes: ...

    async def stat(self, key: str) -> ObjectInfo: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Whether there was an object to delete."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a folder-like prefix (ending in ``/``); return how many."""
        ...

    async def list(
        self, prefix: str = "", *, continuation_token: str | None = None, limit: int = 1000
    ) -> ObjectPage:
        """Objects whose key starts with ``prefix``, in key order (UTF-8 bytes, as S3)."""
        ...
