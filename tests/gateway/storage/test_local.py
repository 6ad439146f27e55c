"""What only the local folder storage promises: plain files, no temporary leftovers, no folder
and object at one path. The rest of the contract is in test_contract.py."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.engines.local.artifacts import artifact_location
from gateway.storage import (
    KeyConflictError,
    LocalStorage,
    ObjectInfo,
    Storage,
)

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def read_all(storage: Storage, key: str, **options: Any) -> list[bytes]:
    return [chunk async for chunk in await storage.open(key, **options)]


def test_is_a_storage(storage: LocalStorage) -> None:
    typed: Storage = storage
    assert typed is storage


def test_keys_are_plain_files_under_the_root(storage: LocalStorage) -> None:
    """The embedded engine reads key-only artifacts at <artifacts_dir>/<key>."""
    run(storage.put_bytes("inputs/u1/doc", b"d"))
    run(storage.put_bytes("executions/wf/step/out", b"o"))

    assert files_under(storage.root) == ["executions/wf/step/out", "inputs/u1/doc"]
    assert (storage.root / "inputs" / "u1" / "doc").read_bytes() == b"d"
    assert (storage.root / "inputs" / "u1" / "doc").stat().st_mode & 0o777 == 0o644
    assert storage.path("inputs/u1/doc") == artifact_location(storage.root, "inputs/u1/doc")


class FailingUpload(io.RawIOBase):
    """Gives some bytes, then fails, as a dropped client connection would."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.calls += 1
        if self.calls > 2:
            raise ConnectionResetError("client went away")
        buffer[:4] = b"part"
        return 4


def test_a_failed_write_keeps_the_old_object_and_no_temporary_file(
    storage: LocalStorage,
) -> None:
    run(storage.put_bytes("k", b"old"))
    with pytest.raises(ConnectionResetError):
        run(storage.put_file("k", FailingUpload()))  # type: ignore[arg-type]
    assert run(storage.read_bytes("k")) == b"old"
    assert os.listdir(storage.root) == ["k"]


def test_a_key_cannot_be_both_an_object_and_a_folder(storage: LocalStorage) -> None:
    run(storage.put_bytes("a", b"object"))
    with pytest.raises(KeyConflictError, match="'a/b' is inside 'a', which is an object"):
        run(storage.put_bytes("a/b", b"x"))
    run(storage.put_bytes("c/d", b"x"))
    with pytest.raises(KeyConflictError, match="'c' is a folder of other keys"):
        run(storage.put_bytes("c", b"x"))
    assert files_under(storage.root) == ["a", "c/d"]


def test_delete_removes_emptied_folders(storage: LocalStorage) -> None:
    run(storage.put_bytes("a/b/c", b"x"))
    run(storage.put_bytes("a/other", b"y"))

    assert run(storage.delete("a/b/c")) is True
    assert run(storage.delete("a/b/c")) is False
    assert run(storage.delete("a")) is False  # a folder is not an object
    assert not (storage.root / "a" / "b").exists()
    run(storage.put_bytes("a/b", b"now an object"))
    assert files_under(storage.root) == ["a/b", "a/other"]


KEYS = [
    "a-c",
    "a/b",
    "a/bc",
    "datastore/x.csv",
    "executions/wf1/s/o",
    "executions/wf10/s/o",
    "executions/wf2/s/o",
    "pipelines/p/code.tar.gz",
    "pipelines/p2/code.tar.gz",
    "z",
]


def keys_of(items: list[ObjectInfo]) -> list[str]:
    return [item.key for item in items]


@pytest.fixture
def filled(storage: LocalStorage) -> LocalStorage:
    async def fill() -> None:
        for key in reversed(KEYS):
            await storage.put_bytes(key, key.encode())

    run(fill())
    return storage


def test_list_skips_partly_written_files(filled: LocalStorage) -> None:
    (filled.root / "a" / ".tender-tmp-abc123").write_bytes(b"half")
    assert keys_of(run(filled.list("a/")).items) == ["a/b", "a/bc"]


def test_list_of_an_empty_storage(storage: LocalStorage) -> None:
    assert run(storage.list()).items == []
    assert not storage.root.exists()
