from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.engines.local.artifacts import artifact_location
from gateway.storage import (
    InvalidKeyError,
    KeyConflictError,
    LocalStorage,
    ObjectInfo,
    ObjectNotFoundError,
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


def test_put_and_read_back(storage: LocalStorage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    info = run(storage.put_bytes("pipelines/p/code.tar.gz", b"archive"))

    assert info.key == "pipelines/p/code.tar.gz"
    assert info.size == 7
    assert info.last_modified.tzinfo is UTC
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=2)
    assert run(storage.read_bytes("pipelines/p/code.tar.gz")) == b"archive"
    assert run(storage.stat("pipelines/p/code.tar.gz")) == info
    assert run(storage.exists("pipelines/p/code.tar.gz"))
    assert not run(storage.exists("pipelines/p"))


def test_keys_are_plain_files_under_the_root(storage: LocalStorage) -> None:
    """The embedded engine reads key-only artifacts at <artifacts_dir>/<key>."""
    run(storage.put_bytes("inputs/u1/doc", b"d"))
    run(storage.put_bytes("executions/wf/step/out", b"o"))

    assert files_under(storage.root) == ["executions/wf/step/out", "inputs/u1/doc"]
    assert (storage.root / "inputs" / "u1" / "doc").read_bytes() == b"d"
    assert (storage.root / "inputs" / "u1" / "doc").stat().st_mode & 0o777 == 0o644
    assert storage.path("inputs/u1/doc") == artifact_location(storage.root, "inputs/u1/doc")


def test_put_file_from_a_path(storage: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    info = run(storage.put_file("datastore/big.bin", source))
    assert info.size == source.stat().st_size
    assert run(storage.read_bytes("datastore/big.bin")) == source.read_bytes()


def test_put_file_from_a_file_object_reads_from_its_position(storage: LocalStorage) -> None:
    upload = io.BytesIO(b"headerbody")
    upload.seek(6)
    run(storage.put_file("inputs/u1/f", upload))
    assert run(storage.read_bytes("inputs/u1/f")) == b"body"


def test_open_streams_chunks(storage: LocalStorage) -> None:
    run(storage.put_bytes("a/b", b"0123456789"))
    assert run(read_all(storage, "a/b", chunk_size=4)) == [b"0123", b"4567", b"89"]
    run(storage.put_bytes("empty", b""))
    assert run(read_all(storage, "empty")) == []


def test_open_of_a_missing_object_fails_before_streaming(storage: LocalStorage) -> None:
    run(storage.put_bytes("a/b", b"x"))
    for key in ("missing", "a", "a/b/c"):
        with pytest.raises(ObjectNotFoundError, match=f"no stored object '{key}'"):
            run(storage.open(key))


def test_an_abandoned_stream_is_closed(storage: LocalStorage) -> None:
    run(storage.put_bytes("a", b"x" * 100))

    async def first_chunk_then_close() -> bytes:
        chunks = await storage.open("a", chunk_size=10)
        first = await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
        return first

    async def never_read() -> None:
        await storage.open("a")

    assert run(first_chunk_then_close()) == b"x" * 10
    run(never_read())  # filterwarnings=error turns an unclosed file into a failure


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read_bytes("x"),
        lambda s: s.stat("x"),
        lambda s: s.stat("folder"),
    ],
)
def test_missing_objects_raise_not_found(
    storage: LocalStorage, call: Callable[[LocalStorage], Awaitable[Any]]
) -> None:
    run(storage.put_bytes("folder/inside", b""))
    with pytest.raises(ObjectNotFoundError):
        run(call(storage))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.put_bytes("../escape", b"x"),
        lambda s: s.put_file("/abs", io.BytesIO(b"x")),
        lambda s: s.open("a/../../x"),
        lambda s: s.read_bytes("a\\b"),
        lambda s: s.stat(""),
        lambda s: s.exists("a//b"),
        lambda s: s.delete("a/\x00"),
        lambda s: s.delete_prefix("../"),
        lambda s: s.delete_prefix("pipelines"),
        lambda s: s.delete_prefix("/"),
        lambda s: s.list("../"),
        lambda s: s.list("", limit=0),
        lambda s: s.list("", limit=1001),
    ],
)
def test_every_method_refuses_bad_keys(
    storage: LocalStorage, tmp_path: Path, call: Callable[[LocalStorage], Awaitable[Any]]
) -> None:
    with pytest.raises(InvalidKeyError):
        run(call(storage))  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_overwrite_replaces_the_whole_object(storage: LocalStorage) -> None:
    run(storage.put_bytes("k", b"old content"))
    run(storage.put_bytes("k", b"new"))
    assert run(storage.read_bytes("k")) == b"new"
    assert files_under(storage.root) == ["k"]


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


def test_concurrent_writers_leave_one_whole_object(storage: LocalStorage) -> None:
    contents = [bytes([i]) * 500_000 for i in range(12)]

    async def write_all() -> None:
        await asyncio.gather(*(storage.put_bytes("same", c) for c in contents))

    run(write_all())
    assert run(storage.read_bytes("same")) in contents
    assert os.listdir(storage.root) == ["same"]


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


def test_delete_prefix_deletes_one_folder_only(storage: LocalStorage) -> None:
    for key in ("pipelines/p/code.tar.gz", "pipelines/p/deps/x", "pipelines/p2/code.tar.gz"):
        run(storage.put_bytes(key, b"x"))

    assert run(storage.delete_prefix("pipelines/p/")) == 2
    assert run(storage.delete_prefix("pipelines/p/")) == 0
    assert files_under(storage.root) == ["pipelines/p2/code.tar.gz"]
    assert run(storage.delete_prefix("pipelines/p2/")) == 1
    assert storage.root.is_dir()
    assert list(storage.root.iterdir()) == []


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


def test_list_orders_by_key_bytes(filled: LocalStorage) -> None:
    page = run(filled.list())
    assert keys_of(page.items) == sorted(KEYS, key=str.encode)
    assert page.next_token is None
    assert [item.size for item in page.items] == [len(k) for k in keys_of(page.items)]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("pipelines/p", ["pipelines/p/code.tar.gz", "pipelines/p2/code.tar.gz"]),
        ("pipelines/p/", ["pipelines/p/code.tar.gz"]),
        ("executions/wf1", ["executions/wf1/s/o", "executions/wf10/s/o"]),
        ("a", ["a-c", "a/b", "a/bc"]),
        ("a/", ["a/b", "a/bc"]),
        ("nothing/", []),
        ("z", ["z"]),
        ("z/", []),
    ],
)
def test_list_by_prefix(filled: LocalStorage, prefix: str, expected: list[str]) -> None:
    assert keys_of(run(filled.list(prefix)).items) == expected


def test_list_pages_with_a_continuation_token(filled: LocalStorage) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = run(filled.list(continuation_token=token, limit=3))
        seen += keys_of(page.items)
        pages += 1
        if page.next_token is None:
            break
        token = page.next_token
    assert seen == sorted(KEYS)
    assert pages == 4


def test_list_of_an_exact_page_has_no_next_token(filled: LocalStorage) -> None:
    page = run(filled.list("executions/", limit=3))
    assert len(page.items) == 3
    assert page.next_token is None


def test_list_skips_partly_written_files(filled: LocalStorage) -> None:
    (filled.root / "a" / ".tender-tmp-abc123").write_bytes(b"half")
    assert keys_of(run(filled.list("a/")).items) == ["a/b", "a/bc"]


def test_list_of_an_empty_storage(storage: LocalStorage) -> None:
    assert run(storage.list()).items == []
    assert not storage.root.exists()
