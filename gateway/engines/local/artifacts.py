"""Key-only S3 artifacts, kept in the artifact repository: the gateway's storage.

The repository is a Storage: with a local folder (the default) the key `K` is the file
`<artifacts_dir>/K`, read and written in place; with an S3 bucket, artifacts go through a
scratch folder of the step. Output artifacts are stored as a tar.gz archive by default (Argo's
default), or as is with `archive: {none: {}}` (a folder then becomes one object per file under
`K/`, as Argo's S3 driver stores it). Input artifacts that are tar.gz archives are unpacked as
Argo's executor does: an archive holding a single entry becomes the declared path itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from gateway.storage import (
    InvalidKeyError,
    KeyConflictError,
    LocalStorage,
    ObjectNotFoundError,
    Storage,
    StorageUnavailableError,
)

__all__ = [
    "ArtifactError",
    "ArtifactRepository",
    "artifact_location",
    "is_archived",
    "is_tarball",
    "load_artifact",
    "save_artifact",
    "unpack",
]

_STORAGE_ERRORS = (InvalidKeyError, KeyConflictError, StorageUnavailableError, OSError)


class ArtifactError(Exception):
    pass


class ArtifactRepository:
    """Fetches and stores artifacts by key; every failure is an ArtifactError naming the key."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def fetch(self, key: str, scratch: Path) -> Path | None:
        """A local file or folder holding the artifact `key` (perhaps in `scratch`), or None."""
        try:
            if isinstance(self.storage, LocalStorage):
                local = self.storage.path(key)
                return local if await asyncio.to_thread(local.exists) else None
            return await self._download(key, scratch)
        except _STORAGE_ERRORS as exc:
            raise ArtifactError(f"cannot read artifact key {key!r}: {exc}") from exc

    async def save(
        self, source: Path, key: str, archive: dict[str, Any] | None, scratch: Path
    ) -> None:
        """Store `source` under `key`, as a tar.gz unless `archive` is none."""
        try:
            if isinstance(self.storage, LocalStorage):
                destination = self.storage.path(key)
                await asyncio.to_thread(save_artifact, source, destination, archive)
                return
            await self._upload(source, key, archive, scratch)
        except _STORAGE_ERRORS as exc:
            raise ArtifactError(f"cannot write artifact key {key!r}: {exc}") from exc

    async def _download(self, key: str, scratch: Path) -> Path | None:
        try:
            target = scratch / PurePosixPath(key).name
            await self._download_file(key, target)
            return target
        except ObjectNotFoundError:
            pass
        # A folder stored with `archive: none`: one object per file under `key/`.
        folder = scratch / (PurePosixPath(key).name or "folder")
        prefix, token, found = key.rstrip("/") + "/", None, False
        while True:
            page = await self.storage.list(prefix, continuation_token=token)
            for item in page.items:
                found = True
                await self._download_file(item.key, folder / item.key.removeprefix(prefix))
            if page.next_token is None:
                return folder if found else None
            token = page.next_token

    async def _download_file(self, key: str, target: Path) -> None:
        chunks = await self.storage.open(key)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        with target.open("wb") as out:
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)

    async def _upload(
        self, source: Path, key: str, archive: dict[str, Any] | None, scratch: Path
    ) -> None:
        if not source.exists():
            raise ArtifactError(f"{source.name}: no such file or directory")
        if is_archived(archive):
            packed = scratch / f"{PurePosixPath(key).name}.tgz"
            await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(save_artifact, source, packed, archive)
            await self.storage.put_file(key, packed)
        elif source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                relative = path.relative_to(source).as_posix()
                await self.storage.put_file(f"{key.rstrip('/')}/{relative}", path)
        else:
            await self.storage.put_file(key, source)


def artifact_location(artifacts_dir: Path, key: str) -> Path:
    """The file or folder holding `key`; refuse keys that would leave the artifact folder."""
    relative = PurePosixPath(key.lstrip("/"))
    if not key.strip("/") or ".." in relative.parts:
        raise ArtifactError(f"invalid artifact key {key!r}")
    return artifacts_dir / relative


def is_archived(archive: dict[str, Any] | None) -> bool:
    return not (archive and "none" in archive)


def save_artifact(source: Path, destination: Path, archive: dict[str, Any] | None) -> None:
    """Copy `source` (file or folder) to `destination`, as a tar.gz unless `archive` is none."""
    if not source.exists():
        raise ArtifactError(f"{source.name}: no such file or directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    _remove(destination)
    if not is_archived(archive):
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copy2(source, destination)
        return
    level = int((archive or {}).get("tar", {}).get("compressionLevel", 6))
    partial = destination.with_name(destination.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=max(0, min(level, 9))) as tar:
        tar.add(source, arcname=source.name)
    partial.replace(destination)


def load_artifact(source: Path, destination: Path, archive: dict[str, Any] | None = None) -> None:
    """Place the artifact stored at `source` at `destination`, unpacking tar.gz archives.

    As Argo's executor does (workflow/executor/executor.go): `archive: {none: {}}` on an input
    keeps a tarball as it is, `tar` unpacks it, and no archive unpacks whatever is a tarball.
    """
    if not source.exists():
        raise ArtifactError(f"artifact {source.name!r} does not exist")
    destination.parent.mkdir(parents=True, exist_ok=True)
    _remove(destination)
    if source.is_dir():
        shutil.copytree(source, destination)
    elif "none" not in (archive or {}) and ("tar" in (archive or {}) or is_tarball(source)):
        unpack(source, destination)
    else:
        shutil.copy2(source, destination)


def is_tarball(path: Path) -> bool:
    with path.open("rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return False
    try:
        with tarfile.open(path, "r:gz") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def unpack(source: Path, destination: Path) -> None:
    """Extract a tar.gz at `destination`; an archive of one entry becomes that entry."""
    with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
        with tarfile.open(source, "r:gz") as tar:
            tar.extractall(scratch, filter="data")
        entries = os.listdir(scratch)
        if len(entries) == 1:
            os.replace(Path(scratch) / entries[0], destination)
        else:
            shutil.copytree(scratch, destination)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
