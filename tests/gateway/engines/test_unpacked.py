"""Input archives unpacked once per content and linked into each step's folder."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from gateway.engines.local.unpacked import UnpackedArchives


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
    path.write_bytes(buffer.getvalue())
    return path


def test_one_unpacking_per_content_shared_by_every_step(tmp_path: Path) -> None:
    cache = UnpackedArchives(tmp_path / "unpacked")
    code = _archive(
        tmp_path / "code.tgz", {"src/f.py": b"def f():\n    return 1\n", "README": b"hi"}
    )
    first, second = tmp_path / "a" / "code", tmp_path / "b" / "code"
    cache.load(code, first, None)
    cache.load(code, second, None)
    assert len(os.listdir(tmp_path / "unpacked")) == 1
    assert (first / "src" / "f.py").stat().st_ino == (second / "src" / "f.py").stat().st_ino
    assert any((first / "src" / "__pycache__").iterdir()), "the sources are byte-compiled once"
    assert not os.access(first / "src" / "f.py", os.W_OK) or os.geteuid() == 0

    (first / "src" / "new.txt").write_text("a step's own file")
    assert not (second / "src" / "new.txt").exists()


def test_new_content_is_unpacked_again(tmp_path: Path) -> None:
    cache = UnpackedArchives(tmp_path / "unpacked")
    code = _archive(tmp_path / "code.tgz", {"f.py": b"one = 1\n", "g.py": b""})
    cache.load(code, tmp_path / "a", None)
    _archive(code, {"f.py": b"two = 2\n", "g.py": b""})
    cache.load(code, tmp_path / "b", None)
    assert (tmp_path / "b" / "f.py").read_bytes() == b"two = 2\n"
    assert (tmp_path / "a" / "f.py").read_bytes() == b"one = 1\n"
    assert len(os.listdir(tmp_path / "unpacked")) == 2


@pytest.mark.parametrize("archive", [{"none": {}}, None])
def test_files_that_are_not_unpacked_are_copied_as_they_are(
    tmp_path: Path, archive: dict[str, object] | None
) -> None:
    cache = UnpackedArchives(tmp_path / "unpacked")
    plain = tmp_path / "data.bin"
    plain.write_bytes(b"\x1f\x8b not really gzip")
    cache.load(plain, tmp_path / "step" / "data", archive)
    assert (tmp_path / "step" / "data").read_bytes() == plain.read_bytes()
    assert not (tmp_path / "unpacked").exists()
