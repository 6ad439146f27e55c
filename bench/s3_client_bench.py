"""Which S3 client for the gateway: aiobotocore (async) against boto3 in worker threads.

Both on the same versitygw, in the same run: a large object up and down (multipart, 8 MiB
parts, 4 in flight, as gateway/storage/s3.py moves them), and many small requests one after
the other and 16 at once (HEAD of a 1 kB object), which is what listing, stat and the engine's
artifacts cost. Run: .venv/bin/python bench/s3_client_bench.py [--mb 256] [--small 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from s3_server import S3Server, start_versitygw

PART = 8 * 1024 * 1024
IN_FLIGHT = 4
CHUNK = 256 * 1024


def _config() -> Any:
    import botocore.config

    return botocore.config.Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        max_pool_connections=32,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _credentials(server: S3Server) -> dict[str, str]:
    return {
        "endpoint_url": server.endpoint_url,
        "region_name": server.region,
        "aws_access_key_id": server.access_key_id,
        "aws_secret_access_key": server.secret_access_key,
    }


async def _aio(server: S3Server, bucket: str, source: Path, small: int) -> dict[str, float]:
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", config=_config(), **_credentials(server)) as s3:
        size = source.stat().st_size
        started = time.perf_counter()
        upload = await s3.create_multipart_upload(Bucket=bucket, Key="big-aio")
        gate = asyncio.Semaphore(IN_FLIGHT)
        with source.open("rb") as handle:

            async def part(number: int) -> dict[str, Any]:
                async with gate:
                    data = await asyncio.to_thread(_read_part, handle, number)
                    answer = await s3.upload_part(
                        Bucket=bucket,
                        Key="big-aio",
                        UploadId=upload["UploadId"],
                        PartNumber=number,
                        Body=data,
                    )
                    return {"PartNumber": number, "ETag": answer["ETag"]}

            parts = await asyncio.gather(*(part(n) for n in range(1, -(-size // PART) + 1)))
        await s3.complete_multipart_upload(
            Bucket=bucket,
            Key="big-aio",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )
        up = time.perf_counter() - started
        started = time.perf_counter()
        answer = await s3.get_object(Bucket=bucket, Key="big-aio")
        received = 0
        async with answer["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                received += len(chunk)
        down = time.perf_counter() - started
        assert received == size
        await s3.put_object(Bucket=bucket, Key="small", Body=b"x" * 1024)
        one_by_one = await _timed(small, lambda: s3.head_object(Bucket=bucket, Key="small"))
        started = time.perf_counter()
        gate16 = asyncio.Semaphore(16)

        async def head() -> None:
            async with gate16:
                await s3.head_object(Bucket=bucket, Key="small")

        await asyncio.gather(*(head() for _ in range(small)))
        concurrent = (time.perf_counter() - started) / small
    return {"up": size / up, "down": size / down, "head": one_by_one, "head16": concurrent}


def _threads(server: S3Server, bucket: str, source: Path, small: int) -> dict[str, float]:
    import boto3

    s3 = boto3.session.Session().client("s3", config=_config(), **_credentials(server))
    size = source.stat().st_size

    async def run() -> dict[str, float]:
        started = time.perf_counter()
        upload = await asyncio.to_thread(s3.create_multipart_upload, Bucket=bucket, Key="big-th")
        gate = asyncio.Semaphore(IN_FLIGHT)
        with source.open("rb") as handle:

            async def part(number: int) -> dict[str, Any]:
                async with gate:
                    data = await asyncio.to_thread(_read_part, handle, number)
                    answer = await asyncio.to_thread(
                        s3.upload_part,
                        Bucket=bucket,
                        Key="big-th",
                        UploadId=upload["UploadId"],
                        PartNumber=number,
                        Body=data,
                    )
                    return {"PartNumber": number, "ETag": answer["ETag"]}

            parts = await asyncio.gather(*(part(n) for n in range(1, -(-size // PART) + 1)))
        await asyncio.to_thread(
            s3.complete_multipart_upload,
            Bucket=bucket,
            Key="big-th",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )
        up = time.perf_counter() - started
        started = time.perf_counter()
        answer = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key="big-th")
        body = answer["Body"]
        received = 0
        while chunk := await asyncio.to_thread(body.read, CHUNK):
            received += len(chunk)
        down = time.perf_counter() - started
        assert received == size
        await asyncio.to_thread(s3.put_object, Bucket=bucket, Key="small", Body=b"x" * 1024)
        one_by_one = await _timed(
            small, lambda: asyncio.to_thread(s3.head_object, Bucket=bucket, Key="small")
        )
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(16) as pool:
            await asyncio.gather(
                *(
                    loop.run_in_executor(pool, lambda: s3.head_object(Bucket=bucket, Key="small"))
                    for _ in range(small)
                )
            )
        concurrent = (time.perf_counter() - started) / small
        return {"up": size / up, "down": size / down, "head": one_by_one, "head16": concurrent}

    return asyncio.run(run())


def _read_part(handle: Any, number: int) -> bytes:
    data: bytes = os.pread(handle.fileno(), PART, (number - 1) * PART)
    return data


async def _timed(count: int, call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await call()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "object"
        with source.open("wb") as out:
            for _ in range(args.mb):
                out.write(os.urandom(1024 * 1024))
        server, stop = start_versitygw(Path(scratch) / "buckets")
        try:
            bucket = server.create_bucket()
            results: dict[str, list[dict[str, float]]] = {"aiobotocore": [], "boto3+threads": []}
            for _ in range(args.rounds):
                results["aiobotocore"].append(asyncio.run(_aio(server, bucket, source, args.small)))
                results["boto3+threads"].append(_threads(server, bucket, source, args.small))
        finally:
            stop()
    print(f"| client | upload {args.mb} MB | download | HEAD one by one | HEAD, 16 at once |")
    print("|---|---|---|---|---|")
    for name, rounds in results.items():

        def median(field: str, rounds: list[dict[str, float]] = rounds) -> float:
            return sorted(r[field] for r in rounds)[len(rounds) // 2]

        print(
            f"| {name} | {median('up') / 2**20:.0f} MB/s | {median('down') / 2**20:.0f} MB/s "
            f"| {median('head') * 1000:.2f} ms | {median('head16') * 1000:.2f} ms |"
        )


if __name__ == "__main__":
    main()
