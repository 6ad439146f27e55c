from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway.datastore import (
    SIGNED_ROUTE,
    InvalidDatastorePathError,
    InvalidPartError,
    LocalTransfers,
    UploadNotFoundError,
    folder_prefix,
    object_key,
)
from gateway.signed_urls import UrlSigner
from gateway.storage import LocalStorage, ObjectNotFoundError

T = TypeVar("T")
NOW = 1_800_000_000.0


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def transfers(storage: LocalStorage, tmp_path: Path) -> LocalTransfers:
    signer = UrlSigner("key", "http://gw.test")
    return LocalTransfers(storage, signer, lifetime_s=60, work_dir=tmp_path, clock=lambda: NOW)


def signed_params(transfers: LocalTransfers, method: str, url: str) -> dict[str, str]:
    query = parse_qsl(urlsplit(url).query)
    assert urlsplit(url).path == SIGNED_ROUTE
    return transfers.signer.verify(method, SIGNED_ROUTE, query, NOW)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "path",
    ["", "/abs", "../up", "a/../../b", "a\\b", "a\x00b", "a//b", "a/./b", "dir/", "a/{{x}}"],
)
def test_paths_outside_the_data_store_are_refused(path: str) -> None:
    with pytest.raises(InvalidDatastorePathError, match="datastore path"):
        object_key(path)


def test_keys_and_folders() -> None:
    assert object_key("a/b c/é.csv") == "datastore/a/b c/é.csv"
    assert object_key("{execution_id}.csv") == "datastore/{execution_id}.csv"
    assert folder_prefix(None) == folder_prefix("") == "datastore/"
    assert folder_prefix("a/b/") == "datastore/a/b/"
    with pytest.raises(InvalidDatastorePathError):
        folder_prefix("/etc")
    with pytest.raises(InvalidDatastorePathError, match="longer"):
        object_key("x" * 2000)


def test_an_upload_url_writes_its_object_and_a_download_url_reads_it(
    transfers: LocalTransfers, storage: LocalStorage
) -> None:
    url, fields = run(transfers.upload_url("datastore/a.txt"))
    assert fields == {}
    params = signed_params(transfers, "POST", url)
    assert params["expires"] == str(int(NOW) + 60)
    run(transfers.receive_upload(params, io.BytesIO(b"content")))

    download = signed_params(transfers, "GET", run(transfers.download_url("datastore/a.txt")))

    async def read() -> bytes:
        return b"".join([c async for c in await transfers.send(download)])

    assert run(read()) == b"content"
    run(storage.delete("datastore/a.txt"))
    with pytest.raises(ObjectNotFoundError):
        run(read())


def test_a_multipart_upload_puts_its_parts_together_and_cleans_up(
    transfers: LocalTransfers, storage: LocalStorage
) -> None:
    key = "datastore/big.bin"
    config = run(transfers.start_multipart(key))
    etags = []
    for number, data in [(1, b"abc"), (2, b"def"), (3, b"g")]:
        url, headers = run(transfers.part_url(key, config, number))
        assert headers == {}
        params = signed_params(transfers, "PUT", url)
        etags.append(run(transfers.receive_part(params, chunks(data[:1], data[1:]))))
        assert etags[-1] == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'

    run(transfers.complete_multipart(key, config, list(zip([1, 2, 3], etags, strict=True))))

    assert run(storage.read_bytes(key)) == b"abcdefg"
    assert files_under(storage.root) == ["datastore/big.bin"]


@pytest.mark.parametrize(
    ("parts", "words"),
    [
        ([], "ascending"),
        ([(2, None), (1, None)], "ascending"),
        ([(1, None), (1, None)], "ascending"),
        ([(1, '"nope"')], "does not match"),
        ([(1, None)], "does not match"),
        ([(5, '"x"')], "not uploaded"),
        ([(0, '"x"')], "from 1"),
    ],
)
def test_parts_that_do_not_match_are_refused_and_nothing_is_written(
    transfers: LocalTransfers,
    storage: LocalStorage,
    parts: list[tuple[int, str | None]],
    words: str,
) -> None:
    key = "datastore/big.bin"
    config = run(transfers.start_multipart(key))
    url, _ = run(transfers.part_url(key, config, 1))
    run(transfers.receive_part(signed_params(transfers, "PUT", url), chunks(b"abc")))

    with pytest.raises(InvalidPartError, match=words):
        run(transfers.complete_multipart(key, config, parts))
    assert not run(storage.exists(key))


@pytest.mark.parametrize(
    "config", [None, {}, {"upload_id": "../x"}, {"upload_id": "0" * 32}, "text"]
)
def test_an_unknown_upload_is_refused(transfers: LocalTransfers, config: Any) -> None:
    with pytest.raises(UploadNotFoundError):
        run(transfers.part_url("datastore/a", config, 1))
    with pytest.raises(UploadNotFoundError):
        run(transfers.complete_multipart("datastore/a", config, [(1, None)]))


def test_an_upload_is_bound_to_its_path(transfers: LocalTransfers) -> None:
    config = run(transfers.start_multipart("datastore/a"))
    with pytest.raises(UploadNotFoundError, match="another path"):
        run(transfers.part_url("datastore/b", config, 1))
