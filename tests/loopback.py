"""What tests and benchmarks need to run a server on loopback: a free port, and waiting until a
started ``tender serve`` answers (or failing with its log when it exited or never did)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

__all__ = ["STARTUP_S", "free_port", "wait_until_serving"]

STARTUP_S = 180.0  # a loaded 2-core machine has taken over 60 s to start a gateway


def free_port() -> int:
    """A loopback port nothing listens on (free when asked: bind it soon)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Return once ``url`` answers HTTP; fail the test, with the server's log, if its process
    exited first or it did not answer within ``STARTUP_S``."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_text = log.read_text(errors="replace")
            pytest.fail(f"tender serve exited with {process.returncode}:\n{log_text}")
        try:
            requests.get(f"{url}/api/v1/pipelines", timeout=5).close()
        except requests.ConnectionError:
            time.sleep(0.1)
        else:
            return
    log_text = log.read_text(errors="replace")
    pytest.fail(f"tender serve did not answer within {STARTUP_S:.0f} s:\n{log_text}")
