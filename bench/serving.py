"""What the benchmarks start, call and stop, written once: ``tender serve`` on a data folder of
its own, a bare uvicorn app (the floors of the HTTP rows), an access token, and the no-op
pipeline and its endpoint created through the SDK.

Servers listen on a free loopback port and are waited for (a busy machine starts them slowly:
up to ``START_S``); they are stopped when the ``with`` block ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import requests

# The tests' helpers (loopback ports) after the repository's own packages: tests/ also holds a
# `compiler` folder.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))

from loopback import free_port

__all__ = [
    "TENDER",
    "Gateway",
    "access_token",
    "bare_uvicorn",
    "create_noop",
    "served",
]

TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]
START_S = 120.0


class Gateway(NamedTuple):
    url: str
    token: str  # an SDK token
    pid: int


def _wait_until_answers(call: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + START_S
    while True:
        try:
            call()
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {START_S:.0f} s") from None
            time.sleep(0.05)


@contextmanager
def served(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """``tender serve`` on ``data_dir`` (settings from ``env``, else this process's)."""
    token = subprocess.run(
        [*TENDER, "token", "create", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [*TENDER, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answers(lambda: requests.get(f"{url}/healthz", timeout=5), "tender serve")
        yield Gateway(url, token, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def bare_uvicorn(folder: Path, source: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The FastAPI app ``app`` of ``source`` served by uvicorn; the URL of its
    ``/endpoints/bare``, which every bare app of the benchmarks answers to a POST."""
    (folder / "bare_app.py").write_text(source)
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
        ],
        cwd=folder,
        env={**os.environ, **(env or {})},
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/endpoints/bare"
    try:
        _wait_until_answers(lambda: requests.post(url, json={"x": 1}, timeout=5), "uvicorn")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@cache
def access_token(url: str, sdk_token: str) -> str:
    """An access token of ``sdk_token`` (one per run: it outlives any benchmark)."""
    answer = requests.post(
        f"{url}/api/v1/auth/refresh", json={"refresh_token": sdk_token}, timeout=10
    )
    answer.raise_for_status()
    access: str = answer.json()["access_token"]
    return access


def create_noop(sdk: Any, code: Path, name: str = "noop", **deployment: Any) -> str:
    """The no-op pipeline of ``code`` (bench/noop_pipeline.py) and an endpoint deployment of the
    same name (with ``deployment``'s options, e.g. ``mode``); its endpoint token."""
    from craft_ai_sdk import INPUT_OUTPUT_TYPES, Input, Output

    sdk.create_pipeline(
        name,
        function_path="src/noop.py",
        function_name="noop",
        container_config={"local_folder": str(code)},
        inputs=[Input("x", INPUT_OUTPUT_TYPES.NUMBER, is_required=False)],
        outputs=[Output("y", INPUT_OUTPUT_TYPES.NUMBER)],
    )
    created = sdk.create_deployment(name, name, "endpoint", **deployment)
    token: str = created["endpoint_token"]
    return token
