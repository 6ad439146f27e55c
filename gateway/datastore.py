"""The data store: a user's objects, kept in storage under ``datastore/<path>``.

Listing, reading and deleting go through the storage interface. Moving an object's bytes in or
out goes through URLs the client uses directly, with no access token (craft-api.md section 5.7):
the ``Transfers`` interface. ``S3Transfers`` hands out the bucket's own presigned URLs, POST
policies and multipart uploads, so that no byte passes through the gateway; ``LocalTransfers``
signs URLs to the gateway's own ``/data-store/signed`` route and keeps the parts of a multipart
upload in storage until they are put together. A download URL may name any stored object (a
pipeline's code archive too); uploads only ever go to the data store.

Pipelines read and write the same keys: ``compiler.keys.datastore_key`` gives the key of a
mapping's ``datastore_path``, checked by the same rules as here.

    ValueError
    ├── InvalidDatastorePathError   a path that could leave the data store, or is malformed
    └── InvalidPartError            a multipart upload's parts do not match what was uploaded
    LookupError
    └── UploadNotFoundError         no multipart upload with that id for that path

(The last two are the storage's: ``gateway.storage.errors``.)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from compiler import CompileError
from compiler.keys import DATASTORE_PREFIX, UPLOADS_PREFIX, check_datastore_path
from gateway.dates import format_date
from gateway.signed_urls import UrlSigner
from gateway.storage import (
    InvalidKeyError,
    InvalidPartError,
    ObjectInfo,
    ObjectNotFoundError,
    Storage,
    UploadNotFoundError,
    check_key,
)

if TYPE_CHECKING:
    from gateway.storage.s3 import S3Storage

__all__ = [
    "DATASTORE_PREFIX",
    "MAX_PART_NUMBER",
    "SIGNED_ROUTE",
    "InvalidDatastorePathError",
    "InvalidPartError",
    "LocalTransfers",
    "S3Transfers",
    "Transfers",
    "UploadNotFoundError",
    "folder_prefix",
    "object_key",
    "object_view",
]

SIGNED_ROUTE = "/data-store/signed"
MAX_PART_NUMBER = 10_000  # as S3
MAX_UPLOAD_BYTES = 5 * 1024**3  # S3's largest single PUT or POST; larger goes in parts
_UPLOADS = UPLOADS_PREFIX
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_SPOOL_BYTES = 1024 * 1024


class InvalidDatastorePathError(ValueError):
    pass


def object_key(path: str) -> str:
    """The storage key of the data store object at ``path``; raises InvalidDatastorePathError."""
    try:
        check_datastore_path(path, "path_to_object")
        return check_key(DATASTORE_PREFIX + path)
    except CompileError as exc:
        raise InvalidDatastorePathError(exc.message) from None
    except InvalidKeyError as exc:
        raise InvalidDatastorePathError(
            str(exc).replace(f"storage key {DATASTORE_PREFIX + path!r}", f"datastore path {path!r}")
        ) from None


def folder_prefix(folder_path: str | None) -> str:
    """The listing prefix of a folder of the data store (all of it when empty)."""
    folder = (folder_path or "").rstrip("/")
    return object_key(folder) + "/" if folder else DATASTORE_PREFIX


def object_view(info: ObjectInfo) -> dict[str, Any]:
    return {
        "path": info.key.removeprefix(DATASTORE_PREFIX),
        "last_modified": format_date(info.last_modified),
        "size": info.size,
    }


class Transfers(Protocol):
    """URLs through which a client moves an object's bytes itself (keys from ``object_key``)."""

    async def upload_url(self, key: str) -> tuple[str, dict[str, str]]:
        """A URL to POST the object to as multipart form data (file part ``file``), and the
        text fields to send with it."""
        ...

    async def download_url(self, key: str) -> str:
        """A URL to GET the object under any storage key from."""
        ...

    async def start_multipart(self, key: str) -> dict[str, Any]:
        """The upload's configuration, which the client sends back with each part and at the end."""
        ...

    async def part_url(
        self, key: str, configuration: Any, part_number: int
    ) -> tuple[str, dict[str, str]]:
        """A URL to PUT one part to, and the headers to send; the answer's ETag names the part."""
        ...

    async def complete_multipart(
        self, key: str, configuration: Any, parts: list[tuple[int, str | None]]
    ) -> None:
        """Put the parts, ``(number, ETag)`` in ascending order, together as the object."""
        ...


@dataclass(frozen=True)
class LocalTransfers:
    """Transfers through the gateway itself, for storage that cannot sign URLs of its own."""

    storage: Storage
    signer: UrlSigner
    lifetime_s: int
    work_dir: Path
    clock: Callable[[], float] = time.time

    async def upload_url(self, key: str) -> tuple[str, dict[str, str]]:
        return self._sign("POST", {"path": _path(key)}), {}

    async def download_url(self, key: str) -> str:
        return self._sign("GET", {"key": key})

    async def start_multipart(self, key: str) -> dict[str, Any]:
        upload_id = secrets.token_hex(16)
        await self.storage.put_bytes(_target_key(upload_id), key.encode())
        return {"upload_id": upload_id}

    async def part_url(
        self, key: str, configuration: Any, part_number: int
    ) -> tuple[str, dict[str, str]]:
        upload_id = await self._upload_of(key, configuration)
        _check_part_number(part_number)
        params = {"path": _path(key), "upload_id": upload_id, "part_number": str(part_number)}
        return self._sign("PUT", params), {}

    async def complete_multipart(
        self, key: str, configuration: Any, parts: list[tuple[int, str | None]]
    ) -> None:
        upload_id = await self._upload_of(key, configuration)
        numbers = [number for number, _ in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise InvalidPartError("the parts must be listed once each, in ascending order")
        with tempfile.TemporaryFile(dir=self.work_dir) as whole:
            for number, etag in parts:
                await self._append_part(whole, upload_id, number, etag)
            whole.seek(0)
            await self.storage.put_file(key, whole)
        await self.storage.delete_prefix(f"{_UPLOADS}{upload_id}/")

    # The signed route's side: what a client does with the URLs above.

    async def receive_upload(self, params: dict[str, str], content: IO[bytes]) -> None:
        await self.storage.put_file(object_key(params["path"]), content)  # type: ignore[arg-type]

    async def receive_part(self, params: dict[str, str], body: AsyncIterator[bytes]) -> str:
        """Store one part; its ETag (an MD5, quoted, as S3's)."""
        key = object_key(params["path"])
        upload_id = await self._upload_of(key, {"upload_id": params.get("upload_id")})
        number = int(params["part_number"])
        digest = hashlib.md5(usedforsecurity=False)
        with tempfile.SpooledTemporaryFile(_SPOOL_BYTES, dir=str(self.work_dir)) as spool:
            async for chunk in body:
                digest.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            await self.storage.put_file(_part_key(upload_id, number), spool)  # type: ignore[arg-type]
        return f'"{digest.hexdigest()}"'

    async def send(self, params: dict[str, str]) -> AsyncIterator[bytes]:
        """The object's content; ObjectNotFoundError before any chunk if there is none."""
        return await self.storage.open(check_key(params["key"]))

    def _sign(self, method: str, params: dict[str, str]) -> str:
        expires_at = int(self.clock()) + self.lifetime_s
        return self.signer.sign(method, SIGNED_ROUTE, params, expires_at)

    async def _upload_of(self, key: str, configuration: Any) -> str:
        upload_id = configuration.get("upload_id") if isinstance(configuration, dict) else None
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFoundError(
                "multipart_upload_configuration is not one that /upload/multipart returned"
            )
        try:
            target = await self.storage.read_bytes(_target_key(upload_id))
        except ObjectNotFoundError:
            raise UploadNotFoundError(f"no multipart upload {upload_id!r} in progress") from None
        if target.decode() != key:
            raise UploadNotFoundError(
                f"multipart upload {upload_id!r} is for another path than {_path(key)!r}"
            )
        return upload_id

    async def _append_part(
        self, whole: IO[bytes], upload_id: str, number: int, etag: str | None
    ) -> None:
        _check_part_number(number)
        try:
            chunks = await self.storage.open(_part_key(upload_id, number))
        except ObjectNotFoundError:
            raise InvalidPartError(f"part {number} was not uploaded") from None
        digest = hashlib.md5(usedforsecurity=False)
        async for chunk in chunks:
            digest.update(chunk)
            whole.write(chunk)
        if etag is None or etag.strip('"') != digest.hexdigest():
            raise InvalidPartError(f"part {number} does not match the ETag given for it")


@dataclass(frozen=True)
class S3Transfers:
    """Transfers straight to and from the bucket: S3 checks what it signed (and answers 403)."""

    storage: S3Storage
    lifetime_s: int
    max_upload_bytes: int = MAX_UPLOAD_BYTES

    async def upload_url(self, key: str) -> tuple[str, dict[str, str]]:
        return await self.storage.presign_post(key, self.lifetime_s, self.max_upload_bytes)

    async def download_url(self, key: str) -> str:
        return await self.storage.presign("get_object", key, self.lifetime_s)

    async def start_multipart(self, key: str) -> dict[str, Any]:
        return {"upload_id": await self.storage.start_multipart(key)}

    async def part_url(
        self, key: str, configuration: Any, part_number: int
    ) -> tuple[str, dict[str, str]]:
        _check_part_number(part_number)
        upload_id = _s3_upload_id(configuration)
        url = await self.storage.presign(
            "upload_part", key, self.lifetime_s, UploadId=upload_id, PartNumber=part_number
        )
        return url, {}

    async def complete_multipart(
        self, key: str, configuration: Any, parts: list[tuple[int, str | None]]
    ) -> None:
        upload_id = _s3_upload_id(configuration)
        numbers = [number for number, _ in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise InvalidPartError("the parts must be listed once each, in ascending order")
        for number, _ in parts:
            _check_part_number(number)
        # A part without an ETag is sent as such: S3 says first whether the upload is this
        # path's (NoSuchUpload), then that the part does not match (InvalidPart).
        tagged = [(number, etag or '""') for number, etag in parts]
        await self.storage.complete_multipart(key, upload_id, tagged)


def _s3_upload_id(configuration: Any) -> str:
    upload_id = configuration.get("upload_id") if isinstance(configuration, dict) else None
    if not isinstance(upload_id, str) or not 0 < len(upload_id) <= 1024:
        raise UploadNotFoundError(
            "multipart_upload_configuration is not one that /upload/multipart returned"
        )
    return upload_id


def _path(key: str) -> str:
    return key.removeprefix(DATASTORE_PREFIX)


def _check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise InvalidPartError(f"part numbers go from 1 to {MAX_PART_NUMBER}, not {number}")


def _target_key(upload_id: str) -> str:
    return f"{_UPLOADS}{upload_id}/target"


def _part_key(upload_id: str, number: int) -> str:
    return f"{_UPLOADS}{upload_id}/parts/{number:05d}"
