"""Low-latency deployment benchmark: call to result through a warm worker, beside floor c.

Run: ``python bench/lowlatency_bench.py [--calls N] [--seconds S]``. In one run, on one machine:
- tender: a live ``tender serve`` (SQLite, the embedded engine) with a ``mode="low_latency"``
  endpoint of a no-op function; each call is ``POST /endpoints/{path}`` with the endpoint token,
  followed through its 303 to the results (``requests``, one session), so two HTTP round trips,
  an execution recorded, its logs and outputs stored;
- floor c over HTTP: a bare FastAPI app on uvicorn (subprocess, same HTTP stack) whose endpoint
  hands the call to an already-running worker process (the same ``templates/worker.py``, the
  same socket protocol) and answers its result: one round trip, nothing recorded;
- floor c itself: the same call into an already-running worker process over its socket, no
  HTTP at all;
- the unmodified craft-ai-sdk's ``trigger_endpoint`` with the endpoint token (it adds two
  ``get_deployment`` round trips of its own), for reference;
- calls completed per second by CLIENTS concurrent clients (threads, one session each) for S
  seconds, tender beside the bare app. The load generator is the bench's own process.

Latencies are measured in turns, a tender call then a floor call, so that both see the same
load when the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests

sys.path.insert(0, str(Path(__file__).parent))

from measure import p99, samples_ms
from noop_pipeline import write_code
from serving import bare_uvicorn, create_noop, served

from gateway.lowlatency.pods import WORKER_SCRIPT

CLIENTS = 16
BARE_APP = """
import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys

from fastapi import FastAPI, Request


@contextlib.asynccontextmanager
async def lifespan(app):
    ours, theirs = socket.socketpair()
    worker = subprocess.Popen(
        [sys.executable, "-I", os.environ["BENCH_WORKER"], str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        env={"PATH": os.environ["PATH"], "TENDER_WORKER": os.environ["BENCH_SPEC"]},
    )
    theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    while "ready" not in json.loads(await reader.readline()):
        pass
    pending = {}

    async def read():
        async for line in reader:
            message = json.loads(line)
            if "done" in message:
                pending.pop(message["done"]).set_result(message)

    reading = asyncio.create_task(read())
    app.state.worker = (writer, pending, itertools.count())
    yield
    reading.cancel()
    worker.kill()


app = FastAPI(lifespan=lifespan)


@app.post("/endpoints/{path}")
async def call(path: str, request: Request):
    writer, pending, ids = request.app.state.worker
    call_id = str(next(ids))
    inputs = [
        {"name": k, "data_type": "number", "env": "X", "encoding": "json", "text": json.dumps(v)}
        for k, v in (await request.json()).items()
    ]
    done = asyncio.get_running_loop().create_future()
    pending[call_id] = done
    message = {"call": call_id, "dir": os.environ["BENCH_DIR"], "inputs": inputs}
    writer.write(json.dumps(message).encode() + b"\\n")
    answer = await done
    return {"outputs": {k: {"value": json.loads(v)} for k, v in answer["values"].items()}}
"""


def _spec(code: Path) -> dict[str, Any]:
    return {
        "code_dir": str(code),
        "function_path": "src/noop.py",
        "function_name": "noop",
        "outputs": [{"name": "y", "data_type": "number"}],
        "max_value_bytes": 60_000,
        "parallel": 6,
    }


def server_cpu_s(url: str) -> float:
    """CPU seconds used so far by the server listening at ``url`` and its children (workers)."""
    port = f"--port {urlsplit(url).port}"
    [server] = [
        p for p in psutil.process_iter(["cmdline"]) if port in " ".join(p.info["cmdline"] or [])
    ]
    total = 0.0
    for process in [server, *server.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def throughput(
    call: Callable[[requests.Session], None], url: str, seconds: float
) -> tuple[float, float]:
    """Calls to result per second under CLIENTS clients, and the server's CPU ms per call."""
    before = server_cpu_s(url)
    started = time.perf_counter()
    done = completed(call, seconds)
    elapsed = time.perf_counter() - started
    return done / elapsed, (server_cpu_s(url) - before) * 1000 / done


def completed(call: Callable[[requests.Session], None], seconds: float) -> int:
    """Calls to result from CLIENTS threads each with its own session, for ``seconds``."""
    counts = [0] * CLIENTS
    failures: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        with requests.Session() as session:
            try:
                while time.perf_counter() < stop:
                    call(session)
                    counts[index] += 1
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"a call failed: {failures[0]!r}")
    return sum(counts)


def raw_floor(code: Path, work: Path, calls: int) -> list[float]:
    """Floor c: one call at a time into a running worker over its socket, no HTTP."""
    ours, theirs = socket.socketpair()
    env = {"PATH": os.environ.get("PATH", ""), "TENDER_WORKER": json.dumps(_spec(code))}
    worker = subprocess.Popen(
        [sys.executable, "-I", str(WORKER_SCRIPT), str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        env=env,
    )
    theirs.close()
    reader = ours.makefile("rb")
    try:
        while "ready" not in json.loads(reader.readline()):
            pass
        counter = iter(range(10**9))
        inputs = [{"name": "x", "data_type": "number", "env": "X", "encoding": "json", "text": "1"}]

        def call() -> None:
            message = {"call": str(next(counter)), "dir": str(work), "inputs": inputs}
            ours.sendall(json.dumps(message).encode() + b"\n")
            while "done" not in json.loads(reader.readline()):
                pass

        return samples_ms(call, calls, warm_up=5)
    finally:
        reader.close()
        ours.close()
        worker.wait(timeout=30)


def bare_app(folder: Path, code: Path) -> AbstractContextManager[str]:
    """Floor c over HTTP: a FastAPI endpoint handing each call to a warm worker."""
    env = {
        "BENCH_WORKER": str(WORKER_SCRIPT),
        "BENCH_SPEC": json.dumps(_spec(code)),
        "BENCH_DIR": str(folder),
    }
    return bare_uvicorn(folder, BARE_APP, env)


def _poster(url: str, headers: dict[str, str]) -> Callable[[requests.Session], None]:
    def call(session: requests.Session) -> None:
        answer = session.post(url, json={"x": 1}, headers=headers, timeout=120)
        assert answer.json()["outputs"] == {"y": {"value": 1}}, answer.text

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args()
    os.environ["SDK_VERBOSE_LOG"] = "false"
    from craft_ai_sdk import CraftAiSdk

    calls = arguments.calls
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        code = write_code(root / "code")
        raw = raw_floor(code, root, calls)
        with bare_app(root, code) as bare_url, served(root / "data") as (url, token, _):
            sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
            endpoint_token = create_noop(sdk, code, mode="low_latency")
            headers = {"Authorization": f"EndpointToken {endpoint_token}"}
            post, floor_post = _poster(f"{url}/endpoints/noop", headers), _poster(bare_url, {})
            tender, floor = interleaved_ms(post, floor_post, calls)
            rate = throughput(post, url, arguments.seconds)
            floor_rate = throughput(floor_post, bare_url, arguments.seconds)
            with_sdk = samples_ms(
                lambda: sdk.trigger_endpoint(
                    "noop", endpoint_token=endpoint_token, inputs={"x": 1}
                ),
                max(calls // 5, 20),
                warm_up=5,
            )
    _report(raw, floor, tender, with_sdk, rates=(rate, floor_rate), arguments=arguments)


def interleaved_ms(
    call: Callable[[requests.Session], None],
    floor: Callable[[requests.Session], None],
    times: int,
) -> tuple[list[float], list[float]]:
    """Each call timed right after a floor call: on a shared machine both see the same load."""
    samples: tuple[list[float], list[float]] = ([], [])
    with requests.Session() as ours, requests.Session() as theirs:
        for index in range(times + 5):
            for function, session, kept in ((call, ours, samples[0]), (floor, theirs, samples[1])):
                started = time.perf_counter()
                function(session)
                if index >= 5:  # warm-up
                    kept.append((time.perf_counter() - started) * 1000)
    return samples


def _report(
    raw: list[float],
    floor: list[float],
    tender: list[float],
    with_sdk: list[float],
    *,
    rates: tuple[tuple[float, float], tuple[float, float]],
    arguments: argparse.Namespace,
) -> None:
    median = statistics.median
    print(
        f"Run: {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores; {arguments.calls} calls one "
        f"at a time for each latency; {CLIENTS} clients for {arguments.seconds:.0f} s."
    )
    print()
    print("| what | tender | floor c over HTTP | ratio | goal |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| call to result, p50 (`requests`, POST + its 303) | {median(tender):.2f} ms "
        f"| {median(floor):.2f} ms | {median(tender) / median(floor):.2f}x | 3x, < 10 ms |"
    )
    print(
        f"| call to result, p99 | {p99(tender):.2f} ms | {p99(floor):.2f} ms "
        f"| {p99(tender) / p99(floor):.2f}x | 5x |"
    )
    (rate, cpu), (floor_rate, floor_cpu) = rates
    print(
        f"| calls to result per second, {CLIENTS} clients | {rate:,.0f}/s | {floor_rate:,.0f}/s "
        f"| {rate / floor_rate:.2f}x | - |"
    )
    print(
        f"| server CPU per call at that load (server + workers) | {cpu:.2f} ms "
        f"| {floor_cpu:.2f} ms | {cpu / floor_cpu:.2f}x | - |"
    )
    print(
        f"| `trigger_endpoint` with the endpoint token (craft-ai-sdk), p50 "
        f"| {median(with_sdk):.2f} ms | - | - | - |"
    )
    print(
        f"| floor c without HTTP: a call into the running worker over its socket, p50 / p99 "
        f"| - | {median(raw):.3f} / {p99(raw):.3f} ms | - | - |"
    )


if __name__ == "__main__":
    main()
