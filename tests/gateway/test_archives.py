from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from craft_ai_sdk.core.pipelines import _compress_folder_to_memory

from gateway.archives import (
    CODE_ARCHIVE_ROOT,
    ArchiveError,
    ArchiveTooLargeError,
    FunctionNotFoundError,
    check_function_present,
    extract_code_archive,
    pack_code_archive,
)

MB = 1024 * 1024


def entry(name: str, content: bytes = b"", **fields: Any) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, content


def folder_entry(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, type=tarfile.DIRTYPE, mode=0o755)


def archive(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, content in entries:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under folder: file contents, None for folders."""
    return {
        path.relative_to(folder).as_posix(): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


@pytest.fixture
def sdk_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "src" / "pkg").mkdir(parents=True)
    (folder / "src" / "f.py").write_text("def f():\n    return 1\n")
    (folder / "src" / "pkg" / "__init__.py").write_text("")
    (folder / "requirements.txt").write_text("numpy\n")
    (folder / "not-included.txt").write_text("x")
    return folder


# --- extract_code_archive ---------------------------------------------------------------


def test_extracts_what_the_sdk_uploads_with_duplicates(sdk_folder: Path, tmp_path: Path) -> None:
    # As create_pipeline builds step_file: included folders, requirements, function_path.
    upload = _compress_folder_to_memory(
        str(sdk_folder), include=["/src", "requirements.txt", "src/f.py"]
    ).getvalue()
    with tarfile.open(fileobj=io.BytesIO(upload)) as tar:
        names = tar.getnames()
    assert names.count("src/f.py") == 2

    dest = tmp_path / "code"
    files = extract_code_archive(upload, dest, max_bytes=MB)

    assert files == ["requirements.txt", "src/f.py", "src/pkg/__init__.py"]
    assert tree(dest) == {
        "requirements.txt": b"numpy\n",
        "src": None,
        "src/f.py": b"def f():\n    return 1\n",
        "src/pkg": None,
        "src/pkg/__init__.py": b"",
    }


def test_reads_from_an_open_file(sdk_folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "step_file"
    path.write_bytes(_compress_folder_to_memory(str(sdk_folder), include=["src"]).getvalue())
    with path.open("rb") as upload:
        files = extract_code_archive(upload, tmp_path / "code", max_bytes=MB)
    assert files == ["src/f.py", "src/pkg/__init__.py"]


def test_duplicate_entries_last_one_wins(tmp_path: Path) -> None:
    data = archive(
        folder_entry("a"),
        entry("a/x.py", b"first", mode=0o755),
        folder_entry("a"),
        entry("a/x.py", b"second"),
    )
    dest = tmp_path / "code"
    assert extract_code_archive(data, dest, max_bytes=MB) == ["a/x.py"]
    assert (dest / "a" / "x.py").read_bytes() == b"second"
    assert (dest / "a" / "x.py").stat().st_mode & 0o777 == 0o644


def test_keeps_only_the_executable_bit_of_modes(tmp_path: Path) -> None:
    data = archive(entry("run.sh", b"#!/bin/sh\n", mode=0o4777), entry("w.txt", b"", mode=0o666))
    dest = tmp_path / "code"
    extract_code_archive(data, dest, max_bytes=MB)
    assert (dest / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (dest / "w.txt").stat().st_mode & 0o7777 == 0o644


def test_normalises_dot_segments_and_creates_missing_folders(tmp_path: Path) -> None:
    data = archive(entry("./a/./b//c.py", b"c"), folder_entry("."), folder_entry("./"))
    dest = tmp_path / "code"
    assert extract_code_archive(data, dest, max_bytes=MB) == ["a/b/c.py"]
    assert (dest / "a" / "b" / "c.py").read_bytes() == b"c"


def test_an_empty_archive_gives_an_empty_folder(tmp_path: Path) -> None:
    dest = tmp_path / "code"
    assert extract_code_archive(archive(), dest, max_bytes=MB) == []
    assert dest.is_dir()
    assert list(dest.iterdir()) == []


def test_replaces_an_existing_folder(tmp_path: Path) -> None:
    dest = tmp_path / "code"
    extract_code_archive(archive(entry("old.py", b"old")), dest, max_bytes=MB)
    extract_code_archive(archive(entry("new.py", b"new")), dest, max_bytes=MB)
    assert tree(dest) == {"new.py": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code"]


def assert_refused(
    data: bytes, tmp_path: Path, match: str, *, error: type[Exception] = ArchiveError
) -> None:
    """Refused with the message, leaving the destination's parent as it was."""
    parent = tmp_path / "pipelines"
    parent.mkdir(exist_ok=True)
    before = sorted(parent.iterdir())
    with pytest.raises(error, match=match):
        extract_code_archive(data, parent / "code", max_bytes=MB)
    assert sorted(parent.iterdir()) == before


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.py", "escapes the folder with '..'"),
        ("src/../../evil.py", "escapes the folder with '..'"),
        ("..", "escapes the folder with '..'"),
        ("/etc/cron.d/evil", "is an absolute path"),
        ("C:/Windows/evil.dll", "starts with a drive letter"),
        ("c:evil.py", "starts with a drive letter"),
        ("src\\..\\..\\evil.py", "contains a backslash"),
        ("x" * 256, "has a name longer than 255 bytes"),
    ],
)
def test_refuses_entries_escaping_the_folder(name: str, problem: str, tmp_path: Path) -> None:
    data = archive(entry("ok.py", b"fine"), entry(name, b"evil"))
    assert_refused(data, tmp_path, re.escape(f"step_file entry {name!r} {problem}"))
    assert not (tmp_path / "evil.py").exists()


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ({"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "is a symbolic link"),
        ({"type": tarfile.SYMTYPE, "linkname": "ok.py"}, "is a symbolic link"),
        ({"type": tarfile.LNKTYPE, "linkname": "ok.py"}, "is a hard link"),
        ({"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "is a device file"),
        ({"type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0}, "is a device file"),
        ({"type": tarfile.FIFOTYPE}, "is a FIFO"),
    ],
)
def test_refuses_links_and_special_files(
    kind: dict[str, Any], problem: str, tmp_path: Path
) -> None:
    data = archive(entry("ok.py", b"fine"), entry("special", **kind))
    assert_refused(data, tmp_path, f"step_file entry 'special' {problem}")


def test_a_refused_archive_leaves_the_existing_folder_alone(tmp_path: Path) -> None:
    dest = tmp_path / "pipelines" / "code"
    extract_code_archive(archive(entry("old.py", b"old")), dest, max_bytes=MB)
    assert_refused(archive(entry("new.py", b"new"), entry("../x", b"")), tmp_path, "escapes")
    assert tree(dest) == {"old.py": b"old"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text, not compressed",
        b"\x1f\x8b\x08\x00broken gzip header and body",
    ],
)
def test_refuses_what_is_not_gzip(data: bytes, tmp_path: Path) -> None:
    assert_refused(data, tmp_path, "step_file is not a valid (gzip file|tar archive)")


def test_refuses_a_zip_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("f.py", "def f(): pass\n")
    assert_refused(buffer.getvalue(), tmp_path, "step_file is not a valid gzip file")


def test_refuses_gzip_that_is_not_tar(tmp_path: Path) -> None:
    data = gzip.compress(b"just some text that is long enough to not be a tar header " * 20)
    assert_refused(data, tmp_path, "step_file is not a valid tar archive")


def test_refuses_a_truncated_archive(tmp_path: Path) -> None:
    data = archive(entry("a.py", os.urandom(50_000)))
    assert_refused(data[: len(data) // 2], tmp_path, "step_file is not a valid")


def test_refuses_an_entry_inside_a_file(tmp_path: Path) -> None:
    data = archive(entry("a", b"file"), entry("a/b.py", b""))
    assert_refused(data, tmp_path, r"step_file entry 'a/b.py' is inside 'a', a file")


def test_refuses_a_file_and_a_folder_of_the_same_name(tmp_path: Path) -> None:
    assert_refused(
        archive(folder_entry("a"), entry("a", b"x")), tmp_path, "is a file and also a folder"
    )
    assert_refused(
        archive(entry("a", b"x"), folder_entry("a")), tmp_path, "is a folder and also a file"
    )


def test_refuses_an_entry_declaring_too_many_bytes(tmp_path: Path) -> None:
    data = archive(entry("small.py", b"x" * 1000), entry("big.bin", b"\0" * (MB + 1)))
    assert_refused(
        data,
        tmp_path,
        "step_file entry 'big.bin' takes the archive over 1048576 bytes",
        error=ArchiveTooLargeError,
    )


def test_refuses_many_small_entries_beyond_the_limit(tmp_path: Path) -> None:
    # Headers alone: no entry declares content, the stream still grows.
    data = archive(*(folder_entry(f"d{i}") for i in range(4000)))
    assert_refused(data, tmp_path, "larger than 1048576 bytes", error=ArchiveTooLargeError)


class CountingFile(io.BytesIO):
    """An upload that remembers how many compressed bytes were read from it."""

    consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def test_stops_decompressing_a_bomb_at_the_limit(tmp_path: Path) -> None:
    bomb = archive(entry("zeros.bin", b"\0" * (64 * MB)))
    assert len(bomb) < 100_000
    upload = CountingFile(bomb)
    # max_bytes below the declared size is caught at the header; above it, in the stream.
    with pytest.raises(ArchiveTooLargeError):
        extract_code_archive(upload, tmp_path / "code", max_bytes=MB)
    assert upload.consumed < len(bomb) // 4
    assert list(tmp_path.iterdir()) == []


def test_stops_reading_at_the_end_of_the_archive(tmp_path: Path) -> None:
    """Whatever follows the end-of-archive blocks is never decompressed."""
    data = archive(entry("a.py", b"x"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        header = tar.getmember("a.py").tobuf(tarfile.GNU_FORMAT)
    raw = header + b"x".ljust(512, b"\0") + b"\0" * 1024 + b"y" * (64 * MB)
    upload = CountingFile(gzip.compress(raw, mtime=0))
    assert extract_code_archive(upload, tmp_path / "code", max_bytes=MB) == ["a.py"]
    assert upload.consumed < 100_000


# --- pack_code_archive ------------------------------------------------------------------


def test_pack_is_deterministic(sdk_folder: Path) -> None:
    first = pack_code_archive(sdk_folder)
    for path in sdk_folder.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    assert pack_code_archive(sdk_folder) == first
    assert gzip.decompress(first)  # a real gzip stream
    assert first[4:8] == b"\0\0\0\0"  # gzip header mtime


def test_pack_holds_one_sorted_root_without_owners(sdk_folder: Path) -> None:
    (sdk_folder / "run.sh").write_text("#!/bin/sh\n")
    (sdk_folder / "run.sh").chmod(0o750)
    with tarfile.open(fileobj=io.BytesIO(pack_code_archive(sdk_folder))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "code",
        "code/not-included.txt",
        "code/requirements.txt",
        "code/run.sh",
        "code/src",
        "code/src/f.py",
        "code/src/pkg",
        "code/src/pkg/__init__.py",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    modes = {m.name: m.mode for m in members}
    assert modes["code/run.sh"] == 0o755
    assert modes["code/src/f.py"] == 0o644
    assert modes["code/src"] == 0o755


def test_pack_then_extract_round_trips(sdk_folder: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    extract_code_archive(pack_code_archive(sdk_folder), unpacked, max_bytes=MB)
    assert [p.name for p in unpacked.iterdir()] == [CODE_ARCHIVE_ROOT]
    assert tree(unpacked / CODE_ARCHIVE_ROOT) == tree(sdk_folder)


def test_pack_refuses_links(sdk_folder: Path) -> None:
    (sdk_folder / "src" / "link.py").symlink_to(sdk_folder / "src" / "f.py")
    with pytest.raises(
        ArchiveError, match=re.escape("'src/link.py' is neither a folder nor a regular")
    ):
        pack_code_archive(sdk_folder)


# --- check_function_present -------------------------------------------------------------


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    (folder / "src").mkdir(parents=True)
    return folder


@pytest.mark.parametrize(
    "source",
    [
        "def f():\n    pass\n",
        "async def f():\n    pass\n",
        "class f:\n    pass\n",
        "import functools\nf = functools.partial(print, 1)\n",
        "f: object = print\n",
        "g, (h, f) = 1, (2, print)\n",
        "from os.path import join as f\n",
        "import os as f\n",
        "from os.path import *\n",
        "try:\n    from fast import f\nexcept ImportError:\n    def f(): pass\n",
        "import sys\nif sys.version_info >= (3, 11):\n    def f(): pass\nelse:\n    f = None\n",
    ],
)
def test_finds_a_function_bound_at_module_level(code: Path, source: str) -> None:
    (code / "src" / "f.py").write_text(source)
    check_function_present(code, "src/f.py", "f")
    check_function_present(code, "./src/f.py", "f")


@pytest.mark.parametrize(
    "source",
    [
        "",
        "def g():\n    def f(): pass\n",
        "class C:\n    def f(self): pass\n",
        "f: object\n",
        "print(f)\n",
        "def g(f): pass\n",
        "import f.g as h\n",
    ],
)
def test_refuses_a_file_not_defining_the_function(code: Path, source: str) -> None:
    (code / "src" / "f.py").write_text(source)
    with pytest.raises(
        FunctionNotFoundError, match=re.escape("'src/f.py' defines no function_name 'f'")
    ):
        check_function_present(code, "src/f.py", "f")


def test_never_runs_the_code(code: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (code / "f.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef f(): pass\n")
    check_function_present(code, "f.py", "f")
    assert not marker.exists()


def test_refuses_invalid_python_naming_the_line(code: Path) -> None:
    (code / "f.py").write_text("def f():\n    return (\n")
    with pytest.raises(FunctionNotFoundError, match=r"'f.py' is not valid Python: .* \(line 2\)"):
        check_function_present(code, "f.py", "f")


def test_refuses_null_bytes(code: Path) -> None:
    (code / "f.py").write_bytes(b"def f(): pass\n\0")
    with pytest.raises(FunctionNotFoundError, match=re.escape("'f.py' is not valid Python")):
        check_function_present(code, "f.py", "f")


@pytest.mark.parametrize(
    ("function_path", "problem"),
    [
        ("src/missing.py", "is not in the folder"),
        ("src", "is not a .py file"),
        ("src/f.txt", "is not a .py file"),
        ("../outside.py", "escapes the uploaded folder"),
        ("/etc/outside.py", "must be relative"),
        ("C:/outside.py", "must be relative"),
        ("src\\f.py", "is not a valid relative path"),
        ("", "is not a valid relative path"),
    ],
)
def test_refuses_a_bad_function_path(code: Path, function_path: str, problem: str) -> None:
    (code / "src" / "f.py").write_text("def f(): pass\n")
    (code.parent / "outside.py").write_text("def f(): pass\n")
    with pytest.raises(FunctionNotFoundError, match=problem) as caught:
        check_function_present(code, function_path, "f")
    assert repr(function_path) in str(caught.value)


def test_refuses_a_link_out_of_the_folder(code: Path) -> None:
    (code.parent / "outside.py").write_text("def f(): pass\n")
    (code / "link.py").symlink_to(code.parent / "outside.py")
    with pytest.raises(FunctionNotFoundError, match=re.escape("'link.py' escapes the folder")):
        check_function_present(code, "link.py", "f")
