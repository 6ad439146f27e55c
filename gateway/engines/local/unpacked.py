"""Input archives unpacked once per content, then linked into each step that reads them.

Every step of a pipeline reads the same code archive. Unpacking it for each step (gzip, tar
headers, one write per file) cost more than the step itself. Here an archive is unpacked once into
`<data_dir>/unpacked/<sha256 of the archive>/`, Python sources in it are byte-compiled there
once, and each step gets a tree of hard links to it: new folders of its own, the files shared.
The shared files are made read-only, so that a step that rewrites one of them in place fails
instead of changing it for the steps after it (root ignores file modes: don't run steps as root).
Creating files next to them is unaffected: the folders are the step's own.
"""

from __future__ import annotations

import compileall
import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.engines.local.artifacts import is_tarball, load_artifact, unpack

__all__ = ["UnpackedArchives"]

_CONTENT = "content"
_SETTLED_NS = 2_000_000_000
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
_StatKey = tuple[int, int, int, int]


class UnpackedArchives:
    """Safe to call from several threads: an entry is complete before it is renamed in place."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._known: dict[_StatKey, str | None] = {}  # archive's stat -> digest, None: no tarball

    def load(self, source: Path, destination: Path, archive: dict[str, Any] | None) -> None:
        """What `artifacts.load_artifact` does, with tarballs unpacked once per content."""
        if "none" in (archive or {}) or not source.is_file():
            load_artifact(source, destination, archive)
            return
        digest = self._digest(source, force=("tar" in (archive or {})))
        if digest is None:
            load_artifact(source, destination, archive)
            return
        content = self._root / digest / _CONTENT
        if not content.exists() and not content.is_symlink():
            self._unpack(source, digest)
        destination.parent.mkdir(parents=True, exist_ok=True)
        _remove(destination)
        _link_tree(content, destination)

    def _digest(self, source: Path, *, force: bool) -> str | None:
        """The archive's SHA-256, remembered by its file's identity. As git does with its index,
        a file changed in the last moments is hashed again: a rewrite of the same size within one
        tick of the file system's clock would keep the same identity."""
        info = source.stat()
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if time.time_ns() - info.st_mtime_ns < _SETTLED_NS:
            self._known.pop(key, None)
        if key not in self._known:
            found = None
            if force or is_tarball(source):
                hashed = hashlib.sha256()
                with source.open("rb") as archive:
                    for block in iter(lambda: archive.read(1 << 20), b""):
                        hashed.update(block)
                found = hashed.hexdigest()
            self._known[key] = found
        return self._known[key]

    def _unpack(self, source: Path, digest: str) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=self._root, prefix=f".{digest[:12]}-"))
        try:
            unpack(source, scratch / _CONTENT)
            if (scratch / _CONTENT).is_dir():
                compileall.compile_dir(scratch / _CONTENT, quiet=2, workers=1)
            _make_read_only(scratch / _CONTENT)
            with contextlib.suppress(FileExistsError, OSError):
                os.rename(scratch, self._root / digest)  # another step may have won the race
        finally:
            if scratch.exists():
                _remove(scratch)


def _link_tree(source: Path, destination: Path) -> None:
    """`destination` mirrors `source`: folders created, files hard-linked (copied when the file
    system refuses links)."""
    if not source.is_dir():
        _link(source, destination)
        return
    destination.mkdir()
    for folder, folders, files in os.walk(source):
        target = destination / os.path.relpath(folder, source)
        for name in folders:
            (target / name).mkdir()
        for name in files:
            _link(Path(folder) / name, target / name)


def _link(source: Path, destination: Path) -> None:
    if source.is_symlink():
        destination.symlink_to(os.readlink(source))
        return
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _make_read_only(path: Path) -> None:
    """Files only: folders stay writable, so that the entry can still be removed."""
    files = [path] if not path.is_dir() else [Path(f) / n for f, _, ns in os.walk(path) for n in ns]
    for file in files:
        if not file.is_symlink():
            file.chmod(_READ_ONLY | (file.stat().st_mode & _EXECUTABLE))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
