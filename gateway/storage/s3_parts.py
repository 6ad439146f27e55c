"""Multipart uploads of a stream: parts read in a worker thread and sent as they come.

Parts are 5 MiB (S3's smallest), larger only when an object of known size would need more than
S3's 10,000 parts. Two are in flight at a time: each costs about three times its size in memory
while it is sent (botocore's request, aiohttp's buffer), measured in bench/README.md.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef
else:
    S3Client = Any
    CompletedPartTypeDef = dict

__all__ = ["PART_SIZE", "part_size", "remaining_bytes", "upload_parts"]

PART_SIZE = 5 * 1024 * 1024
_MAX_PARTS = 9_000  # S3 takes 10,000: room for a source that grows while it is read
_IN_FLIGHT = 2


def part_size(size: int | None) -> int:
    """5 MiB, or what keeps an object of ``size`` bytes within S3's count of parts."""
    if size is None:
        return PART_SIZE
    return max(PART_SIZE, -(-size // _MAX_PARTS))


def remaining_bytes(source: BinaryIO) -> int | None:
    """Bytes from the position to the end, when the file can tell (a spooled upload can)."""
    try:
        if not source.seekable():
            return None
        here = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(here)
    except (OSError, ValueError):
        return None
    return end - here


async def upload_parts(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    upload_id: str,
    first: bytes,
    read_part: Callable[[], bytes],
) -> list[CompletedPartTypeDef]:
    """Send ``first``, then each part ``read_part`` gives until it gives nothing, to the
    multipart upload ``upload_id`` of ``key``; their numbers and ETags, in order.

    The first failure cancels the parts still in flight and is raised.
    """
    gate = asyncio.Semaphore(_IN_FLIGHT)
    tasks: list[asyncio.Task[CompletedPartTypeDef]] = []

    async def send(number: int, data: bytes) -> CompletedPartTypeDef:
        try:
            answer = await client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        finally:
            gate.release()
        return {"PartNumber": number, "ETag": answer["ETag"]}

    try:
        data = first
        while data:
            await gate.acquire()
            if any(task.done() and task.exception() for task in tasks):
                break  # gather below raises it
            tasks.append(asyncio.create_task(send(len(tasks) + 1, data)))
            data = await asyncio.to_thread(read_part)
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
