"""Storage in an S3 bucket (AWS, MinIO, versitygw, any S3 server): ``K`` is ``<prefix>K``.

The client is aiobotocore: async on aiohttp, so transfers never hold one of the worker threads
the store's calls run in (see docs/ARCHITECTURE.md, "S3 client", for what was measured). Large
objects go up in parts (``s3_parts``); a PUT and a multipart upload's completion are atomic in
S3, so a reader sees the whole object or none. Every S3 or network failure is translated where
it enters, by ``s3_errors``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from gateway.storage.base import CHUNK_SIZE, MAX_LIST_LIMIT, ObjectInfo, ObjectPage
from gateway.storage.errors import (
    InvalidKeyError,
    InvalidPartError,
    ObjectNotFoundError,
    StorageUnavailableError,
    UploadNotFoundError,
)
from gateway.storage.keys import check_key, check_prefix
from gateway.storage.s3_errors import (
    MISSING,
    NETWORK_ERRORS,
    S3Place,
    error_code,
    storage_error,
)
from gateway.storage.s3_parts import PART_SIZE, part_size, remaining_bytes, upload_parts

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
else:
    S3Client = Any

__all__ = ["PART_SIZE", "S3Config", "S3Storage", "open_s3_storage"]


@dataclass(frozen=True, kw_only=True)
class S3Config:
    """Where the bucket is and how to reach it (the gateway's TENDER_S3_* settings)."""

    bucket: str
    endpoint_url: str = ""  # empty for AWS
    region: str = ""
    prefix: str = ""  # "" or a folder ending in "/"
    addressing_style: str | None = None  # "path" or "virtual"; None: botocore's choice
    access_key_id: str = ""  # with secret_access_key, or neither: the AWS credential chain
    secret_access_key: str = ""
    public_endpoint_url: str = ""  # the endpoint in presigned URLs, when clients need another


@contextlib.asynccontextmanager
async def open_s3_storage(config: S3Config) -> AsyncIterator[S3Storage]:
    """The bucket's storage, once S3 answered that the bucket is there and open to us.

    Raises StorageUnavailableError naming the setting that is most likely wrong.
    """
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(_client(config, config.endpoint_url))
        signer = client
        if config.public_endpoint_url and config.public_endpoint_url != config.endpoint_url:
            signer = await stack.enter_async_context(_client(config, config.public_endpoint_url))
        storage = S3Storage(client, config, signer=signer)
        await storage.check_bucket()
        yield storage


def _client(config: S3Config, endpoint_url: str) -> Any:
    s3_options: dict[str, Any] = {}
    if config.addressing_style:
        s3_options["addressing_style"] = config.addressing_style
    return get_session().create_client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=config.region or None,
        config=AioConfig(
            signature_version="s3v4",
            s3=s3_options,
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=16,
            # Checksums only where S3 requires them: other S3 servers do not all take the
            # CRC32 trailers botocore sends by default since 1.36.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
        aws_access_key_id=config.access_key_id or None,
        aws_secret_access_key=config.secret_access_key or None,
    )


class S3Storage:
    """The Storage protocol on one bucket, every key under ``config.prefix``."""

    def __init__(self, client: S3Client, config: S3Config, *, signer: S3Client | None = None):
        self.client = client
        self.signer = signer or client
        """The client that presigns URLs: it may name the endpoint as clients reach it."""
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._place = S3Place(config.bucket, config.endpoint_url, config.region)

    def with_prefix(self, prefix: str) -> S3Storage:
        """The same bucket and clients under another prefix (``""``: the bucket's own keys)."""
        return S3Storage(self.client, replace(self.config, prefix=prefix), signer=self.signer)

    def bucket_key(self, key: str) -> str:
        """The S3 key of ``key`` (checked)."""
        return self.prefix + check_key(key)

    async def check_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("NoSuchBucket", "404", "NotFound"):
                raise storage_error(exc, self._place, "opening", None) from None
            self._raise(exc, "opening", None)
        except NETWORK_ERRORS as exc:
            self._raise(exc, "opening", None)

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        full = self.bucket_key(key)
        try:
            await self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except (ClientError, *NETWORK_ERRORS) as exc:
            self._raise(exc, "writing", key)
        return await self.stat(key)

    async def put_file(self, key: str, source: Path | BinaryIO) -> ObjectInfo:
        if isinstance(source, Path):
            with source.open("rb") as content:
                size = os.fstat(content.fileno()).st_size
                return await self._put_stream(key, content.read, part_size(size))
        return await self._put_stream(key, source.read, part_size(remaining_bytes(source)))

    async def open(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        full = self.bucket_key(key)
        try:
            answer = await self.client.get_object(Bucket=self.bucket, Key=full)
        except (ClientError, *NETWORK_ERRORS) as exc:
            self._raise(exc, "reading", key)
        return _ObjectChunks(
            answer["Body"], chunk_size, lambda exc: self._error(exc, "reading", key)
        )

    async def read_bytes(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in await self.open(key)])

    async def stat(self, key: str) -> ObjectInfo:
        full = self.bucket_key(key)
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if error_code(exc) in MISSING:
                # A HEAD answers a bare 404 for a missing bucket too: tell them apart.
                await self.check_bucket()
            self._raise(exc, "reading", key)
        except NETWORK_ERRORS as exc:
            self._raise(exc, "reading", key)
        return ObjectInfo(key=key, size=head["ContentLength"], last_modified=_utc(head))

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> bool:
        # S3 deletes quietly whether or not there was an object: ask first.
        existed = await self.exists(key)
        if existed:
            try:
                await self.client.delete_object(Bucket=self.bucket, Key=self.bucket_key(key))
            except (ClientError, *NETWORK_ERRORS) as exc:
                self._raise(exc, "deleting", key)
        return existed

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise InvalidKeyError(f"storage prefix {prefix!r} to delete must end with '/'")
        check_key(prefix[:-1])
        deleted, token = 0, None
        while True:
            page = await self.list(prefix, continuation_token=token, limit=MAX_LIST_LIMIT)
            if page.items:
                await self._delete_many([item.key for item in page.items])
                deleted += len(page.items)
            if page.next_token is None:
                return deleted
            token = page.next_token

    async def list(
        self, prefix: str = "", *, continuation_token: str | None = None, limit: int = 1000
    ) -> ObjectPage:
        check_prefix(prefix)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidKeyError(f"list limit {limit} is not between 1 and {MAX_LIST_LIMIT}")
        options: dict[str, Any] = (
            {"ContinuationToken": continuation_token} if continuation_token else {}
        )
        try:
            page = await self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self.prefix + prefix, MaxKeys=limit, **options
            )
        except ClientError as exc:
            if error_code(exc) == "InvalidArgument" and continuation_token:
                raise InvalidKeyError(
                    f"continuation token {continuation_token!r} is not one a listing gave"
                ) from None
            self._raise(exc, "listing", prefix or "/")
        except NETWORK_ERRORS as exc:
            self._raise(exc, "listing", prefix or "/")
        items = [
            ObjectInfo(
                key=entry["Key"].removeprefix(self.prefix),
                size=entry["Size"],
                last_modified=entry["LastModified"].astimezone(UTC),
            )
            for entry in page.get("Contents", [])
        ]
        more = page.get("IsTruncated") and page.get("NextContinuationToken")
        return ObjectPage(items=items, next_token=page["NextContinuationToken"] if more else None)

    # Presigned URLs: S3 checks them itself (the data store, a pipeline's code download).

    async def presign(self, operation: str, key: str, lifetime_s: int, **params: Any) -> str:
        url: str = await self.signer.generate_presigned_url(
            operation,
            Params={"Bucket": self.bucket, "Key": self.bucket_key(key), **params},
            ExpiresIn=lifetime_s,
        )
        return url

    async def presign_post(
        self, key: str, lifetime_s: int, max_bytes: int
    ) -> tuple[str, dict[str, str]]:
        """A POST policy for exactly ``key``, up to ``max_bytes``: its URL and form fields."""
        post = await self.signer.generate_presigned_post(
            self.bucket,
            self.bucket_key(key),
            Conditions=[["content-length-range", 0, max_bytes]],
            ExpiresIn=lifetime_s,
        )
        return post["url"], dict(post["fields"])

    # Multipart uploads whose parts clients PUT themselves, to presigned ``upload_part`` URLs.

    async def start_multipart(self, key: str) -> str:
        """A new multipart upload's id."""
        try:
            upload = await self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.bucket_key(key)
            )
        except (ClientError, *NETWORK_ERRORS) as exc:
            self._raise(exc, "starting an upload to", key)
        return upload["UploadId"]

    async def complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]
    ) -> None:
        """Put the parts, ``(number, ETag)`` in ascending order, together as the object."""
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.bucket_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": tag} for n, tag in parts]},
            )
        except ClientError as exc:
            code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
            if code == "NoSuchUpload":
                raise UploadNotFoundError(
                    f"no multipart upload {upload_id!r} in progress for this path"
                ) from None
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise InvalidPartError(f"S3 refused the parts ({code}): {message}") from None
            self._raise(exc, "completing an upload to", key)
        except NETWORK_ERRORS as exc:
            self._raise(exc, "completing an upload to", key)

    # Internals.

    async def _put_stream(self, key: str, read: Callable[[int], bytes], size: int) -> ObjectInfo:
        """Write what ``read`` gives, in one PUT or in parts of ``size`` bytes."""
        first = await asyncio.to_thread(read, size)
        if len(first) < size:
            return await self.put_bytes(key, first)
        full = self.bucket_key(key)
        try:
            upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=full)
        except (ClientError, *NETWORK_ERRORS) as exc:
            self._raise(exc, "writing", key)
        upload_id = upload["UploadId"]
        try:
            parts = await upload_parts(
                self.client,
                bucket=self.bucket,
                key=full,
                upload_id=upload_id,
                first=first,
                read_part=lambda: read(size),
            )
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as exc:
            with contextlib.suppress(ClientError, *NETWORK_ERRORS):
                await asyncio.shield(
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=full, UploadId=upload_id
                    )
                )
            if isinstance(exc, (ClientError, *NETWORK_ERRORS)):
                self._raise(exc, "writing", key)
            raise
        return await self.stat(key)

    async def _delete_many(self, keys: builtins.list[str]) -> None:
        objects: Any = [{"Key": self.bucket_key(key)} for key in keys]
        try:
            answer = await self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        except (ClientError, *NETWORK_ERRORS) as exc:
            self._raise(exc, "deleting", keys[0])
        if failed := answer.get("Errors"):
            first = failed[0]
            key = str(first.get("Key", "")).removeprefix(self.prefix)
            raise StorageUnavailableError(
                f"S3 did not delete {key!r} from bucket {self.bucket!r}: "
                f"{first.get('Code')} {first.get('Message', '')}".rstrip()
            )

    def _raise(self, exc: BaseException, action: str, key: str | None) -> NoReturn:
        raise self._error(exc, action, key) from exc

    def _error(self, exc: BaseException, action: str, key: str | None) -> Exception:
        return storage_error(exc, self._place, action, key)


class _ObjectChunks(AsyncIterator[bytes]):
    """An object's body in chunks; the connection is released at the end or on ``aclose``."""

    def __init__(
        self, body: Any, chunk_size: int, translate: Callable[[BaseException], Exception]
    ) -> None:
        self._body = body
        self._chunk_size = chunk_size
        self._translate = translate
        self._closed = False

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk: bytes = await self._body.read(self._chunk_size)
        except NETWORK_ERRORS as exc:
            await self.aclose()
            raise self._translate(exc) from exc
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()

    def __del__(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()


def _utc(head: Any) -> datetime:
    modified: datetime = head["LastModified"]
    return modified.astimezone(UTC)
