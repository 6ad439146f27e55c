"""S3 transfer benchmark: a 1 GB object through the SDK and the gateway, beside a bare client.

Run: ``python bench/s3_transfer_bench.py [--mb 1024]`` (needs versitygw: $VERSITYGW or Go).
In one run, on one versitygw bucket and one ``tender serve`` with TENDER_STORAGE=s3:

- the floors: boto3's own ``upload_file`` / ``download_file`` of the object (a bare client, 10
  threads), and the same with one part at a time, in the SDK's part size: what the SDK's own
  pattern costs without the gateway;
- the data store through the unmodified craft-ai-sdk (presigned multipart PUTs up, one
  presigned GET down): the bytes go straight to S3, the gateway only signs;
- the gateway's own paths that still carry data: a run's file input (form upload to the
  gateway, which streams it into the bucket) and a file output read back through the gateway.

The gateway's peak RSS (VmHWM, reset before each phase through /proc/PID/clear_refs) is
reported for each phase, beside its RSS at rest.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from serving import served

from s3_server import S3Server, start_versitygw

SDK_PART = 38 * 256 * 1024  # craft-ai-sdk's CRAFT_AI__MULTIPART_PART_SIZE__B default
COPY = """
import shutil


def copy(document):
    shutil.copyfile(document["path"], "copy.bin")
    return {"copy": {"path": "copy.bin"}}
"""


def _rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def measured(pid: int, action: Callable[[], object]) -> tuple[float, float]:
    """Seconds ``action`` took, and the gateway's peak RSS (MB) meanwhile."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    started = time.perf_counter()
    action()
    return time.perf_counter() - started, _rss_mb(pid, "VmHWM")


def _bare_client(server: S3Server) -> Any:
    import boto3
    import botocore.config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=botocore.config.Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _write_random(path: Path, mb: int) -> None:
    with path.open("wb") as out:
        for _ in range(mb):
            out.write(os.urandom(1024 * 1024))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    args = parser.parse_args()
    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as scratch_dir:
        scratch = Path(scratch_dir)
        source = scratch / "object.bin"
        _write_random(source, args.mb)
        size = source.stat().st_size
        server, stop = start_versitygw(scratch / "buckets")
        try:
            bucket = server.create_bucket()
            env = {k: v for k, v in os.environ.items() if not k.startswith("TENDER_")}
            env.update(server.settings_env(bucket, prefix="bench/"))
            bare = _bare_client(server)
            with served(scratch / "data", env) as (url, token, pid):
                rows.append(("gateway at rest", 0.0, _rss_mb(pid, "VmRSS")))
                rows += _phases(
                    url, token, pid, bare=bare, bucket=bucket, source=source, scratch=scratch
                )
        finally:
            stop()
    _print(rows, size)


def _phases(
    url: str, token: str, pid: int, *, bare: Any, bucket: str, source: Path, scratch: Path
) -> list[tuple[str, float, float | None]]:
    from craft_ai_sdk import INPUT_OUTPUT_TYPES, CraftAiSdk
    from craft_ai_sdk.io import Input, Output

    os.environ["SDK_VERBOSE_LOG"] = "false"
    sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
    rows: list[tuple[str, float, float | None]] = []
    from boto3.s3.transfer import TransferConfig

    floor_key = f"floor/{secrets.token_hex(4)}"
    seconds, _ = measured(pid, lambda: bare.upload_file(str(source), bucket, floor_key))
    rows.append(("upload, bare client (boto3, 10 threads): the floor", seconds, None))
    one_by_one = TransferConfig(
        multipart_threshold=SDK_PART, multipart_chunksize=SDK_PART, use_threads=False
    )
    seconds, _ = measured(
        pid, lambda: bare.upload_file(str(source), bucket, floor_key, Config=one_by_one)
    )
    rows.append(("upload, bare client, SDK-sized parts one at a time", seconds, None))
    seconds, peak = measured(pid, lambda: sdk.upload_data_store_object(str(source), "bench.bin"))
    rows.append(("upload, SDK upload_data_store_object", seconds, peak))
    target = scratch / "back.bin"
    seconds, _ = measured(pid, lambda: bare.download_file(bucket, floor_key, str(target)))
    rows.append(("download, bare client (boto3, 10 threads): the floor", seconds, None))
    target.unlink()
    seconds, _ = measured(
        pid, lambda: bare.download_file(bucket, floor_key, str(target), Config=one_by_one)
    )
    rows.append(("download, bare client, one request at a time", seconds, None))
    target.unlink()
    seconds, peak = measured(pid, lambda: sdk.download_data_store_object("bench.bin", str(target)))
    rows.append(("download, SDK download_data_store_object", seconds, peak))
    assert target.stat().st_size == source.stat().st_size
    target.unlink()

    code = scratch / "code"
    (code / "src").mkdir(parents=True)
    (code / "src" / "copy.py").write_text(COPY)
    sdk.create_pipeline(
        "copy",
        function_path="src/copy.py",
        function_name="copy",
        container_config={"local_folder": str(code)},
        inputs=[Input("document", INPUT_OUTPUT_TYPES.FILE)],
        outputs=[Output("copy", INPUT_OUTPUT_TYPES.FILE)],
    )
    session = requests.Session()
    access = session.post(f"{url}/api/v1/auth/refresh", json={"refresh_token": token}).json()
    session.headers["Authorization"] = f"Bearer {access['access_token']}"
    started: dict[str, str] = {}

    def run_with_input() -> None:
        with source.open("rb") as document:
            answer = session.post(f"{url}/api/v1/pipelines/copy/run", files={"document": document})
        answer.raise_for_status()
        started["id"] = answer.json()["execution_id"]

    seconds, peak = measured(pid, run_with_input)
    rows.append(("upload, run file input through the gateway", seconds, peak))
    seconds, peak = measured(
        pid,
        lambda: sdk.retrieve_pipeline_execution_outputs(started["id"]),
    )
    rows.append(("the step: input from the bucket, output to it (engine)", seconds, peak))

    def read_output() -> None:
        answer = session.get(f"{url}/api/v1/executions/{started['id']}/outputs/copy", stream=True)
        answer.raise_for_status()
        with target.open("wb") as out:
            for chunk in answer.iter_content(1024 * 1024):
                out.write(chunk)

    seconds, peak = measured(pid, read_output)
    rows.append(("download, file output through the gateway", seconds, peak))
    assert target.stat().st_size == source.stat().st_size
    return rows


def _print(rows: list[tuple[str, float, float | None]], size: int) -> None:
    print(f"| {size / 2**20:.0f} MB object | time | throughput | gateway peak RSS |")
    print("|---|---|---|---|")
    for name, seconds, peak in rows:
        rate = f"{size / 2**20 / seconds:.0f} MB/s" if seconds else ""
        shown = f"{seconds:.1f} s" if seconds else ""
        rss = f"{peak:.0f} MB" if peak is not None else ""
        print(f"| {name} | {shown} | {rate} | {rss} |")


if __name__ == "__main__":
    main()
