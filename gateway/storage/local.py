"""Storage in a local folder: the object ``K`` is the file ``<root>/K``, and nothing else.

That is the layout the embedded engine reads key-only S3 artifacts from, so the same folder
serves as its ``artifacts_dir``. A write goes to a ``.tender-tmp-*`` file in the object's own
folder (same file system, so ``os.replace`` is atomic), which listings skip and keys cannot name.
Emptied folders are removed, so that ``a/b`` deleted leaves room for an object ``a``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.storage.base import CHUNK_SIZE, MAX_LIST_LIMIT, ObjectInfo, ObjectPage
from gateway.storage.errors import InvalidKeyError, KeyConflictError, ObjectNotFoundError
from gateway.storage.keys import TEMP_PREFIX, check_key, check_prefix

__all__ = ["LocalStorage"]

_WRITE_ATTEMPTS = 3


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    def path(self, key: str) -> Path:
        """Where ``key`` lives (checked), for the embedded engine and local file responses."""
        return self.root.joinpath(*check_key(key).split("/"))

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, lambda out: out.write(data))

    async def put_file(self, key: str, source: Path | BinaryIO) -> ObjectInfo:
        if isinstance(source, Path):
            return await asyncio.to_thread(self._write_from_path, key, source)
        return await asyncio.to_thread(
            self._write, key, lambda out: shutil.copyfileobj(source, out, CHUNK_SIZE)
        )

    async def open(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(key) from None
        return _FileChunks(handle, chunk_size)

    async def read_bytes(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(key) from None

    async def stat(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._stat, key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise InvalidKeyError(f"storage prefix {prefix!r} to delete must end with '/'")
        folder = self.path(prefix[:-1])
        return await asyncio.to_thread(self._delete_folder, folder)

    async def list(
        self, prefix: str = "", *, continuation_token: str | None = None, limit: int = 1000
    ) -> ObjectPage:
        check_prefix(prefix)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidKeyError(f"list limit {limit} is not between 1 and {MAX_LIST_LIMIT}")
        return await asyncio.to_thread(self._list, prefix, continuation_token or "", limit)

    # Blocking parts, run in a worker thread.

    def _write_from_path(self, key: str, source: Path) -> ObjectInfo:
        with source.open("rb") as content:
            return self._write(key, lambda out: shutil.copyfileobj(content, out, CHUNK_SIZE))

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> ObjectInfo:
        path = self.path(key)
        if path.is_dir():
            raise KeyConflictError(f"storage key {key!r} is a folder of other keys")
        fd, temporary = self._temporary_file(key, path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self._stat(key)

    def _temporary_file(self, key: str, folder: Path) -> tuple[int, str]:
        for _ in range(_WRITE_ATTEMPTS - 1):
            self._make_folders(key, folder)
            try:
                return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
            except FileNotFoundError:
                continue  # a concurrent delete removed the emptied folder: make it again
        self._make_folders(key, folder)
        return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)

    def _make_folders(self, key: str, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            taken = next(p for p in [folder, *folder.parents] if p.is_file())
            raise KeyConflictError(
                f"storage key {key!r} is inside {taken.relative_to(self.root).as_posix()!r}, "
                "which is an object"
            ) from None

    def _stat(self, key: str) -> ObjectInfo:
        try:
            result = os.stat(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(key) from None
        if not stat.S_ISREG(result.st_mode):
            raise ObjectNotFoundError(key)
        modified = datetime.fromtimestamp(result.st_mtime, UTC)
        return ObjectInfo(key=key, size=result.st_size, last_modified=modified)

    def _delete(self, key: str) -> bool:
        path = self.path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        self._prune(path.parent)
        return True

    def _delete_folder(self, folder: Path) -> int:
        count = sum(1 for _ in _walk_files(folder, self.root))
        shutil.rmtree(folder, ignore_errors=True)
        self._prune(folder.parent)
        return count

    def _prune(self, folder: Path) -> None:
        """Remove emptied folders up to the root; a folder someone just wrote to stays."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _list(self, prefix: str, after: str, limit: int) -> ObjectPage:
        folders = prefix.rpartition("/")[0]
        top = self.root.joinpath(*folders.split("/")) if folders else self.root
        keys = sorted(
            key for key, _ in _walk_files(top, self.root) if key.startswith(prefix) and key > after
        )
        items = []
        for key in keys[:limit]:
            try:
                items.append(self._stat(key))
            except ObjectNotFoundError:
                continue  # deleted while listing
        more = len(keys) > limit
        return ObjectPage(items=items, next_token=keys[limit - 1] if more else None)


def _walk_files(top: Path, root: Path) -> Iterator[tuple[str, Path]]:
    """``(key, path)`` of every object under ``top``, skipping partly written files."""
    for folder, _, files in os.walk(top):
        base = Path(folder).relative_to(root).as_posix()
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                yield (name if base == "." else f"{base}/{name}"), Path(folder, name)


class _FileChunks(AsyncIterator[bytes]):
    """Chunks of an open file, read in a worker thread; closed at the end or on ``aclose``."""

    def __init__(self, handle: BinaryIO, chunk_size: int) -> None:
        self._handle = handle
        self._chunk_size = chunk_size

    async def __anext__(self) -> bytes:
        if self._handle.closed:
            raise StopAsyncIteration
        chunk = await asyncio.to_thread(self._handle.read, self._chunk_size)
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._handle.close()

    def __del__(self) -> None:
        # Dropped without being read to the end: close quietly, not through the file's
        # own finalizer and its ResourceWarning.
        self._handle.close()
