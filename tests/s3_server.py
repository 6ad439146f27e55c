"""A real S3 server for the tests: versitygw on a free loopback port, or one named outside.

``start_versitygw(folder)`` starts the Versity S3 Gateway (built by ``tools/versitygw/build``)
serving buckets as folders under ``folder`` and returns the server and a function that stops
it. The session fixture ``s3_server`` (registered in ``tests/conftest.py``) starts one for the
whole run, unless ``TENDER_TEST_S3_ENDPOINT_URL`` names a server already running (MinIO, say;
with ``TENDER_TEST_S3_ACCESS_KEY_ID``, ``TENDER_TEST_S3_SECRET_ACCESS_KEY`` and optionally
``TENDER_TEST_S3_REGION``), so that the same suite runs against another implementation.

``$VERSITYGW`` names a prebuilt binary (``scripts/test`` builds it first). Without it and
without Go, the tests that need S3 are skipped, unless ``TENDER_REQUIRE_S3`` is set, as
``scripts/test`` does: then they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopback import free_port

__all__ = ["S3Server", "s3_server", "start_versitygw", "versitygw_binary"]

REPO = Path(__file__).resolve().parent.parent
_STARTUP_S = 30.0


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        """A plain botocore S3 client on this server (path-style, SigV4)."""
        import botocore.config
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=botocore.config.Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
            ),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (by default with a fresh random name) and return its name."""
        bucket = name or f"tender-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def settings_env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The ``TENDER_*`` variables that point ``tender serve`` at ``bucket`` on this server."""
        return {
            "TENDER_STORAGE": "s3",
            "TENDER_S3_ENDPOINT_URL": self.endpoint_url,
            "TENDER_S3_BUCKET": bucket,
            "TENDER_S3_REGION": self.region,
            "TENDER_S3_PREFIX": prefix,
            "TENDER_S3_ADDRESSING_STYLE": "path",
            "TENDER_S3_ACCESS_KEY_ID": self.access_key_id,
            "TENDER_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


def versitygw_binary() -> Path:
    """The versitygw binary: ``$VERSITYGW``, or built (and cached) by tools/versitygw/build."""
    if prebuilt := os.environ.get("VERSITYGW"):
        return Path(prebuilt)
    if shutil.which("go") is None:
        reason = "`go` is not on PATH: cannot build tools/versitygw (the S3 server of the tests)"
        if os.environ.get("TENDER_REQUIRE_S3"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    # The first build downloads versitygw's Go modules and compiles them: minutes on 2 cores.
    built = subprocess.run(
        [REPO / "tools" / "versitygw" / "build"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"tools/versitygw/build failed:\n{built.stderr[-4000:]}", pytrace=False)
    return Path(built.stdout.strip().splitlines()[-1])


def start_versitygw(
    folder: Path, binary: Path | None = None
) -> tuple[S3Server, Callable[[], None]]:
    """Serve the buckets kept under ``folder`` on a free loopback port; return the server and
    the function that stops it. Raises RuntimeError if it does not answer in time."""
    program = binary or versitygw_binary()
    folder.mkdir(parents=True, exist_ok=True)
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id=f"tender{secrets.token_hex(4)}",
        secret_access_key=secrets.token_hex(20),
    )
    log = (folder.parent / f"{folder.name}.versitygw.log").open("wb")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ROOT_ACCESS_KEY": server.access_key_id,
        "ROOT_SECRET_KEY": server.secret_access_key,
    }
    address = server.endpoint_url.removeprefix("http://")
    process = subprocess.Popen(
        [str(program), "--port", address, "--region", server.region, "posix", str(folder)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()

    try:
        _wait_until_listening(process, address)
    except BaseException:
        stop()
        raise
    return server, stop


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the whole run; each test creates the buckets it uses."""
    if endpoint := os.environ.get("TENDER_TEST_S3_ENDPOINT_URL"):
        yield S3Server(
            endpoint_url=endpoint,
            access_key_id=os.environ["TENDER_TEST_S3_ACCESS_KEY_ID"],
            secret_access_key=os.environ["TENDER_TEST_S3_SECRET_ACCESS_KEY"],
            region=os.environ.get("TENDER_TEST_S3_REGION", "us-east-1"),
        )
        return
    server, stop = start_versitygw(tmp_path_factory.mktemp("s3") / "buckets")
    try:
        yield server
    finally:
        stop()


def _wait_until_listening(process: subprocess.Popen[bytes], address: str) -> None:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + _STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"versitygw exited with {process.returncode} at start")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"versitygw did not listen on {address} within {_STARTUP_S} s")
