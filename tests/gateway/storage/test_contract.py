"""The Storage contract, on every backend: a local folder, and a real S3 bucket.

The S3 storage runs under a key prefix, with an object outside it in the same bucket, so that
every test also checks that the prefix is added and taken off again, and nothing leaks out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.storage import (
    InvalidKeyError,
    LocalStorage,
    ObjectInfo,
    ObjectNotFoundError,
    Storage,
)
from gateway.storage.s3 import PART_SIZE, S3Config, open_s3_storage
from s3_server import S3Server

Body = Callable[[Storage], Awaitable[None]]
Check = Callable[[Body], None]
OUTSIDE_KEY = "outside/of/the/prefix"


@pytest.fixture(params=["local", "s3"])
def check(request: pytest.FixtureRequest, tmp_path: Path) -> Check:
    """``check(body)`` runs ``body(storage)`` in one event loop, on a fresh, empty storage."""
    opener: Callable[[], contextlib.AbstractAsyncContextManager[Storage]]
    if request.param == "local":

        @contextlib.asynccontextmanager
        async def opener() -> AsyncIterator[Storage]:
            yield LocalStorage(tmp_path / "storage")

    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.create_bucket()
        server.client().put_object(Bucket=bucket, Key=OUTSIDE_KEY, Body=b"not ours")
        config = s3_config(server, bucket, prefix="tender/")
        opener = functools.partial(open_s3_storage, config)

    def run(body: Body) -> None:
        async def within() -> None:
            async with opener() as storage:
                await body(storage)

        asyncio.run(within())

    return run


def s3_config(server: S3Server, bucket: str, prefix: str = "") -> S3Config:
    return S3Config(
        bucket=bucket,
        endpoint_url=server.endpoint_url,
        region=server.region,
        prefix=prefix,
        addressing_style="path",
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )


async def read_all(storage: Storage, key: str, **options: Any) -> list[bytes]:
    return [chunk async for chunk in await storage.open(key, **options)]


def keys_of(items: list[ObjectInfo]) -> list[str]:
    return [item.key for item in items]


def test_put_and_read_back(check: Check) -> None:
    async def body(storage: Storage) -> None:
        before = datetime.now(UTC) - timedelta(seconds=2)
        info = await storage.put_bytes("pipelines/p/code.tar.gz", b"archive")

        assert info.key == "pipelines/p/code.tar.gz"
        assert info.size == 7
        assert info.last_modified.tzinfo is UTC
        assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=2)
        assert await storage.read_bytes("pipelines/p/code.tar.gz") == b"archive"
        assert await storage.stat("pipelines/p/code.tar.gz") == info
        assert await storage.exists("pipelines/p/code.tar.gz")
        assert not await storage.exists("pipelines/p")

    check(body)


def test_put_file_from_a_path_in_parts(check: Check, tmp_path: Path) -> None:
    """Larger than one part: S3 takes it as a multipart upload."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2 * PART_SIZE + 5))

    async def body(storage: Storage) -> None:
        info = await storage.put_file("datastore/big.bin", source)
        assert info.size == source.stat().st_size
        assert await storage.read_bytes("datastore/big.bin") == source.read_bytes()

    check(body)


def test_put_file_from_a_file_object_reads_from_its_position(check: Check) -> None:
    async def body(storage: Storage) -> None:
        upload = io.BytesIO(b"headerbody")
        upload.seek(6)
        await storage.put_file("inputs/u1/f", upload)
        assert await storage.read_bytes("inputs/u1/f") == b"body"

    check(body)


def test_open_streams_chunks(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("a/b", b"0123456789")
        chunks = await read_all(storage, "a/b", chunk_size=4)
        assert b"".join(chunks) == b"0123456789"
        assert all(len(chunk) <= 4 for chunk in chunks)
        await storage.put_bytes("empty", b"")
        assert await read_all(storage, "empty") == []

    check(body)


def test_open_of_a_missing_object_fails_before_streaming(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("a/b", b"x")
        for key in ("missing", "a", "a/b/c"):
            with pytest.raises(ObjectNotFoundError, match=f"no stored object '{key}'"):
                await storage.open(key)

    check(body)


def test_an_abandoned_stream_is_closed(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("a", b"x" * 100)
        chunks = await storage.open("a", chunk_size=10)
        assert len(await anext(chunks)) <= 10
        await chunks.aclose()  # type: ignore[attr-defined]
        await storage.open("a")  # never read: filterwarnings=error fails an unclosed stream

    check(body)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read_bytes("x"),
        lambda s: s.stat("x"),
        lambda s: s.stat("folder"),
    ],
)
def test_missing_objects_raise_not_found(
    check: Check, call: Callable[[Storage], Awaitable[Any]]
) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("folder/inside", b"")
        with pytest.raises(ObjectNotFoundError):
            await call(storage)

    check(body)


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
    check: Check, call: Callable[[Storage], Awaitable[Any]]
) -> None:
    async def body(storage: Storage) -> None:
        with pytest.raises(InvalidKeyError):
            await call(storage)
        assert (await storage.list()).items == []

    check(body)


def test_overwrite_replaces_the_whole_object(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("k", b"old content")
        await storage.put_bytes("k", b"new")
        assert await storage.read_bytes("k") == b"new"
        assert keys_of((await storage.list()).items) == ["k"]

    check(body)


class FailingUpload(io.RawIOBase):
    """Gives some bytes, then fails, as a dropped client connection would."""

    def __init__(self, good_reads: int) -> None:
        self.calls = 0
        self.good_reads = good_reads

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.calls += 1
        if self.calls > self.good_reads:
            raise ConnectionResetError("client went away")
        buffer[:] = b"p" * len(buffer)
        return len(buffer)


@pytest.mark.parametrize("good_reads", [0, 3], ids=["at-once", "in-parts"])
def test_a_failed_write_keeps_the_old_object(check: Check, good_reads: int) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("k", b"old")
        upload = io.BufferedReader(FailingUpload(good_reads), buffer_size=PART_SIZE)
        with pytest.raises(ConnectionResetError):
            await storage.put_file("k", upload)
        assert await storage.read_bytes("k") == b"old"
        assert keys_of((await storage.list()).items) == ["k"]

    check(body)


def test_concurrent_writers_leave_one_whole_object(check: Check) -> None:
    contents = [bytes([i]) * 500_000 for i in range(12)]

    async def body(storage: Storage) -> None:
        await asyncio.gather(*(storage.put_bytes("same", c) for c in contents))
        assert await storage.read_bytes("same") in contents
        assert keys_of((await storage.list()).items) == ["same"]

    check(body)


def test_delete_says_whether_there_was_an_object(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes("a/b/c", b"x")
        await storage.put_bytes("a/other", b"y")

        assert await storage.delete("a/b/c") is True
        assert await storage.delete("a/b/c") is False
        assert await storage.delete("a") is False  # a folder is not an object
        await storage.put_bytes("a/b", b"now an object")
        assert keys_of((await storage.list()).items) == ["a/b", "a/other"]

    check(body)


def test_delete_prefix_deletes_one_folder_only(check: Check) -> None:
    async def body(storage: Storage) -> None:
        for key in ("pipelines/p/code.tar.gz", "pipelines/p/deps/x", "pipelines/p2/code.tar.gz"):
            await storage.put_bytes(key, b"x")

        assert await storage.delete_prefix("pipelines/p/") == 2
        assert await storage.delete_prefix("pipelines/p/") == 0
        assert keys_of((await storage.list()).items) == ["pipelines/p2/code.tar.gz"]
        assert await storage.delete_prefix("pipelines/p2/") == 1
        assert (await storage.list()).items == []

    check(body)


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


async def fill(storage: Storage) -> None:
    await asyncio.gather(*(storage.put_bytes(key, key.encode()) for key in reversed(KEYS)))


def test_list_orders_by_key_bytes(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await fill(storage)
        page = await storage.list()
        assert keys_of(page.items) == sorted(KEYS, key=str.encode)
        assert page.next_token is None
        assert [item.size for item in page.items] == [len(k) for k in keys_of(page.items)]

    check(body)


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
def test_list_by_prefix(check: Check, prefix: str, expected: list[str]) -> None:
    async def body(storage: Storage) -> None:
        await fill(storage)
        assert keys_of((await storage.list(prefix)).items) == expected

    check(body)


def test_list_pages_with_a_continuation_token(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await fill(storage)
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            page = await storage.list(continuation_token=token, limit=3)
            seen += keys_of(page.items)
            pages += 1
            if page.next_token is None:
                break
            token = page.next_token
        assert seen == sorted(KEYS)
        assert pages == 4

    check(body)


def test_list_of_an_exact_page_has_no_next_token(check: Check) -> None:
    async def body(storage: Storage) -> None:
        await fill(storage)
        page = await storage.list("executions/", limit=3)
        assert len(page.items) == 3
        assert page.next_token is None

    check(body)


def test_list_of_an_empty_storage(check: Check) -> None:
    async def body(storage: Storage) -> None:
        assert (await storage.list()).items == []
        assert await storage.delete_prefix("pipelines/") == 0

    check(body)
