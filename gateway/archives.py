"""The code a pipeline runs: the SDK's ``step_file`` upload in, the stored code artifact out.

``create_pipeline`` with a ``local_folder`` uploads a gzip tar of that folder (craft-api.md
section 5.2 b): arcnames relative to the folder, the same entry possibly twice. Extraction
writes every file itself, so nothing in an archive decides where bytes land or what they are:
only folders and regular files are accepted, each checked by name before anything is written,
and the uncompressed stream is counted as it is read, so a small upload cannot expand without
bound.
"""

from __future__ import annotations

import ast
import gzip
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

__all__ = [
    "CODE_ARCHIVE_ROOT",
    "ArchiveError",
    "ArchiveTooLargeError",
    "FunctionNotFoundError",
    "check_function_present",
    "extract_code_archive",
    "pack_code_archive",
    "write_archive",
]

# Argo's executor unpacks an input artifact holding a single top-level entry *as* the
# artifact's path (workflow/executor `unpack`; our embedded engine does the same), and one
# holding several entries *into* it. One root folder makes both cases the same.
CODE_ARCHIVE_ROOT = "code"

_CHUNK = 1024 * 1024
_NAME_MAX = 255  # bytes in one path segment, on the file systems we write to
_DRIVE = re.compile(r"[A-Za-z]:")


class ArchiveError(ValueError):
    """The upload is not an acceptable tar.gz of a folder; the message names the entry."""


class ArchiveTooLargeError(ArchiveError):
    """The archive expands beyond the allowed size."""


class FunctionNotFoundError(ValueError):
    """``function_path`` is not a Python file of the folder, or does not define the function."""


def extract_code_archive(data: bytes | IO[bytes], dest: Path, *, max_bytes: int) -> list[str]:
    """Unpack a gzip tar into ``dest`` and return its files' relative paths, sorted.

    The archive is unpacked next to ``dest`` and moved into place only when all of it was
    accepted, replacing what ``dest`` held; a refused archive leaves nothing behind. Blocking:
    call it in a thread from async code. Raises ArchiveError, ArchiveTooLargeError.
    """
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        files = _extract_all(source, scratch, max_bytes)
        _move_into_place(scratch, dest)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return files


def _extract_all(source: IO[bytes], scratch: Path, max_bytes: int) -> list[str]:
    files: set[str] = set()
    declared = 0
    try:
        with (
            gzip.GzipFile(fileobj=source, mode="rb") as compressed,
            tarfile.open(fileobj=_CountingReader(compressed, max_bytes), mode="r|") as tar,
        ):
            for member in tar:
                parts = _checked_parts(member, scratch)
                declared += member.size if member.isreg() else 0
                if declared > max_bytes:
                    raise ArchiveTooLargeError(
                        f"step_file entry {member.name!r} takes the archive over "
                        f"{max_bytes} bytes uncompressed"
                    )
                if parts:
                    _write_member(tar, member, parts, scratch)
                    if member.isreg():
                        files.add("/".join(parts))
    except tarfile.TarError as exc:
        raise ArchiveError(f"step_file is not a valid tar archive: {exc}") from exc
    return sorted(files)


class _CountingReader(io.RawIOBase):
    """Decompresses lazily and refuses to yield more than ``limit`` bytes in total."""

    def __init__(self, inner: gzip.GzipFile, limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self._count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # Never decompress more than one byte past the limit, whatever tarfile asks for.
        remaining = self._limit + 1 - self._count
        try:
            chunk = self._inner.read(remaining if size < 0 else min(size, remaining))
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"step_file is not a valid gzip file: {exc}") from exc
        self._count += len(chunk)
        if self._count > self._limit:
            raise ArchiveTooLargeError(
                f"step_file is larger than {self._limit} bytes once uncompressed"
            )
        return chunk


def _checked_parts(member: tarfile.TarInfo, scratch: Path) -> list[str]:
    """The entry's path segments (none for the root folder), or ArchiveError naming it."""
    name = member.name
    problem = _name_problem(name) or _type_problem(member)
    if problem is None:
        try:
            tarfile.data_filter(member, str(scratch))
        except tarfile.FilterError as exc:
            problem = str(exc)
    if problem:
        raise ArchiveError(f"step_file entry {name!r} {problem}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts and not member.isdir():
        raise ArchiveError(f"step_file entry {name!r} is a file without a name")
    return parts


def _name_problem(name: str) -> str | None:
    parts = name.split("/")
    checks = (
        ("\x00" in name, "contains a NUL character"),
        ("\\" in name, "contains a backslash; use '/' between folders"),
        (name.startswith("/"), "is an absolute path"),
        (_DRIVE.match(name) is not None, "starts with a drive letter"),
        (".." in parts, "escapes the folder with '..'"),
        (
            any(len(part.encode()) > _NAME_MAX for part in parts),
            f"has a name longer than {_NAME_MAX} bytes",
        ),
    )
    return next((problem for failed, problem in checks if failed), None)


def _type_problem(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r}); links are not allowed"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r}); links are not allowed"
    if member.ischr() or member.isblk():
        return "is a device file; only folders and regular files are allowed"
    if member.isfifo():
        return "is a FIFO; only folders and regular files are allowed"
    if not (member.isreg() or member.isdir()):
        return "has an unsupported type; only folders and regular files are allowed"
    return None


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str], scratch: Path
) -> None:
    for depth in range(1, len(parts)):
        folder = scratch.joinpath(*parts[:depth])
        if folder.is_file():
            inside = "/".join(parts[:depth])
            raise ArchiveError(f"step_file entry {member.name!r} is inside {inside!r}, a file")
        folder.mkdir(exist_ok=True)
    target = scratch.joinpath(*parts)
    if member.isdir():
        if target.is_file():
            raise ArchiveError(f"step_file entry {member.name!r} is a folder and also a file")
        target.mkdir(exist_ok=True)
        return
    if target.is_dir():
        raise ArchiveError(f"step_file entry {member.name!r} is a file and also a folder")
    content = tar.extractfile(member)
    assert content is not None  # a regular file always has content
    mode = 0o755 if member.mode & 0o111 else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with os.fdopen(os.open(target, flags, mode), "wb") as out:
        shutil.copyfileobj(content, out, _CHUNK)
    os.chmod(target, mode)  # a duplicate entry keeps the mode of the last one


def _move_into_place(scratch: Path, dest: Path) -> None:
    if not dest.exists():
        scratch.rename(dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    dest.rename(old / dest.name)
    scratch.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def pack_code_archive(folder: Path, root: str = CODE_ARCHIVE_ROOT) -> bytes:
    """A tar.gz of ``folder`` under one ``root`` folder, in memory (see ``write_archive``)."""
    buffer = io.BytesIO()
    write_archive(folder, root, buffer)
    return buffer.getvalue()


def write_archive(folder: Path, root: str, sink: IO[bytes]) -> None:
    """A tar.gz of ``folder`` under one ``root`` folder (``code/``, or ``deps/`` for a
    pipeline's dependencies), byte-identical for identical contents. One root, because Argo's
    executor makes an archive's single top entry the artifact's path.

    Entries are sorted, owners and times zeroed, modes reduced to 755/644; the gzip header has
    no name and mtime 0. Raises ArchiveError for anything but folders and regular files.
    """
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_tar_info(root, tarfile.DIRTYPE, 0o755))
        for path, relative in _sorted_tree(folder):
            arcname = f"{root}/{relative}"
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                tar.addfile(_tar_info(arcname, tarfile.DIRTYPE, 0o755))
            elif stat.S_ISREG(mode):
                info = _tar_info(arcname, tarfile.REGTYPE, 0o755 if mode & 0o111 else 0o644)
                info.size = path.stat().st_size
                with path.open("rb") as content:
                    tar.addfile(info, content)
            else:
                raise ArchiveError(f"{relative!r} is neither a folder nor a regular file")


def _sorted_tree(folder: Path, prefix: str = "") -> Iterator[tuple[Path, str]]:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        relative = f"{prefix}{entry.name}"
        path = Path(entry.path)
        yield path, relative
        if entry.is_dir(follow_symlinks=False):
            yield from _sorted_tree(path, f"{relative}/")


def _tar_info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def check_function_present(folder: Path, function_path: str, function_name: str) -> None:
    """Check, without running it, that ``function_path`` in ``folder`` defines ``function_name``.

    A top-level ``def``, ``async def``, ``class``, assignment or import of that name counts,
    also inside a module-level ``if``/``try``/``with``; a ``from m import *`` is given the
    benefit of the doubt. Raises FunctionNotFoundError naming what is missing.
    """
    file = _function_file(folder, function_path)
    try:
        tree = ast.parse(file.read_bytes(), filename=function_path)
    except SyntaxError as exc:
        raise FunctionNotFoundError(
            f"function_path {function_path!r} is not valid Python: {exc.msg} (line {exc.lineno})"
        ) from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise FunctionNotFoundError(
            f"function_path {function_path!r} is not valid Python: {exc}"
        ) from exc
    names = _bound_names(tree.body)
    if function_name not in names and "*" not in names:
        raise FunctionNotFoundError(
            f"function_path {function_path!r} defines no function_name {function_name!r}"
        )


def _function_file(folder: Path, function_path: str) -> Path:
    problem = None
    if not function_path or "\x00" in function_path or "\\" in function_path:
        problem = "is not a valid relative path"
    elif function_path.startswith("/") or _DRIVE.match(function_path):
        problem = "must be relative to the uploaded folder"
    elif ".." in PurePosixPath(function_path).parts:
        problem = "escapes the uploaded folder with '..'"
    elif not function_path.endswith(".py"):
        problem = "is not a .py file"
    if problem:
        raise FunctionNotFoundError(f"function_path {function_path!r} {problem}")
    file = folder.joinpath(*PurePosixPath(function_path).parts)
    if not file.resolve().is_relative_to(folder.resolve()):
        raise FunctionNotFoundError(f"function_path {function_path!r} escapes the folder")
    if not file.is_file():
        raise FunctionNotFoundError(f"function_path {function_path!r} is not in the folder")
    return file


def _bound_names(statements: list[ast.stmt]) -> set[str]:
    """Names a module binds when it runs; ``*`` for a star import."""
    names: set[str] = set()
    for node in statements:
        names |= _names_bound_by(node)
        if isinstance(node, _SCOPES):
            continue  # what a function or class body binds is not module-level
        for field in ("body", "orelse", "finalbody"):
            names |= _bound_names(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            names |= _bound_names(handler.body)
    return names


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _names_bound_by(node: ast.stmt) -> set[str]:
    match node:
        case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
            return {node.name}
        case ast.Assign():
            return {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        case ast.AnnAssign(target=ast.Name(id=name), value=value) if value is not None:
            return {name}
        case ast.Import() | ast.ImportFrom():
            return {(a.asname or a.name).split(".")[0] for a in node.names}
    return set()
