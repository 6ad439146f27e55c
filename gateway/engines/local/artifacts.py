"""Key-only S3 artifacts kept in a local folder: the key `K` lives at `<artifacts_dir>/K`.

Output artifacts are stored as a tar.gz archive by default (Argo's default), or as is with
`archive: {none: {}}`. Input artifacts that are tar.gz archives are unpacked as Argo's executor
does: an archive holding a single entry becomes the declared path itself.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "ArtifactError",
    "artifact_location",
    "is_archived",
    "load_artifact",
    "save_artifact",
]


class ArtifactError(Exception):
    pass


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
    unpack = "none" not in (archive or {}) and ("tar" in (archive or {}) or _is_tarball(source))
    if source.is_file() and unpack:
        _unpack(source, destination)
    elif source.is_dir():
        shutil.copytree(source, destination)
    else:
        shutil.copy2(source, destination)


def _is_tarball(path: Path) -> bool:
    with path.open("rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return False
    try:
        with tarfile.open(path, "r:gz") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _unpack(source: Path, destination: Path) -> None:
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
