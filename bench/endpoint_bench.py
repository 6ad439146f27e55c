"""Endpoint benchmark: accepted calls per second and call-to-result latency, beside floors.

Run: ``python bench/endpoint_bench.py [--seconds S] [--calls N]``. In one run, against a live
``tender serve`` (SQLite, the embedded engine) and on the same machine:
- calls accepted per second by ``POST /endpoints/{path}`` of a no-op pipeline, not waiting for
  the results (the 303 answer), from 16 concurrent clients, beside a bare FastAPI endpoint that
  does nothing, served by uvicorn in a subprocess and called by the same clients;
- the latency from the call to its results (``requests`` following the 303 to the long-poll,
  one call at a time), median and p99, beside the embedded engine's one-step floor (the
  interpreter running the step runner on the no-op function, no engine at all).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))

from gateway_bench import _free_port, served
from noop_pipeline import floor_once, write_code

CLIENTS = 16
BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.post("/endpoints/{path}")
async def call(path: str) -> dict[str, str]:
    return {"execution_id": "none"}
"""


def calls_per_second(
    url: str, headers: dict[str, str], body: dict[str, object], seconds: float
) -> float:
    """Calls answered below 400 per second, from CLIENTS threads each with its own session."""
    counts = [0] * CLIENTS
    failures: list[str] = []
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        with requests.Session() as session:
            while time.perf_counter() < stop:
                answer = session.post(
                    url, json=body, headers=headers, allow_redirects=False, timeout=60
                )
                if answer.status_code >= 400:
                    failures.append(answer.text)
                    return
                counts[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"a call was refused: {failures[0]}")
    return sum(counts) / elapsed


def latencies_ms(function: Callable[[], object], times: int) -> list[float]:
    function()  # warm-up
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def bare_fastapi(folder: Path, seconds: float) -> float:
    (folder / "bare_app.py").write_text(BARE_APP)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=folder,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/endpoints/bare"
    try:
        for _ in range(200):
            try:
                requests.post(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        return calls_per_second(url, {}, {"x": 1}, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=50)
    arguments = parser.parse_args()
    os.environ["SDK_VERBOSE_LOG"] = "false"
    from craft_ai_sdk import INPUT_OUTPUT_TYPES, CraftAiSdk, Input, Output

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        code = write_code(root / "code")
        (root / "floor").mkdir()
        floor = latencies_ms(lambda: floor_once(code, root / "floor"), arguments.calls)
        bare = bare_fastapi(root, arguments.seconds)
        with served(root / "data") as (url, token):
            sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
            sdk.create_pipeline(
                "noop",
                function_path="src/noop.py",
                function_name="noop",
                container_config={"local_folder": str(code)},
                inputs=[Input("x", INPUT_OUTPUT_TYPES.NUMBER, is_required=False)],
                outputs=[Output("y", INPUT_OUTPUT_TYPES.NUMBER)],
            )
            endpoint_token = sdk.create_deployment("noop", "noop", "endpoint")["endpoint_token"]
            headers = {"Authorization": f"EndpointToken {endpoint_token}"}
            endpoint = f"{url}/endpoints/noop"
            accepted = calls_per_second(endpoint, headers, {"x": 1}, arguments.seconds)
            # Let the accepted backlog drain before timing single calls.
            drain_until = time.monotonic() + 600
            while time.monotonic() < drain_until:
                latest = sdk.list_pipeline_executions("noop")
                if all(e["end_date"] for e in latest):
                    break
                time.sleep(1)
            session = requests.Session()

            def call() -> None:
                answer = session.post(endpoint, json={"x": 1}, headers=headers, timeout=120)
                assert answer.json()["outputs"] == {"y": {"value": 1}}, answer.text

            latency = latencies_ms(call, arguments.calls)
    print(
        f"Run: {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores; {CLIENTS} clients for "
        f"{arguments.seconds:.0f} s; latencies of {arguments.calls} calls, one at a time."
    )
    print()
    print("| what | tender | floor | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| calls accepted per second, no-op endpoint, no wait (303) | {accepted:,.0f}/s "
        f"| {bare:,.0f}/s (bare FastAPI) | {accepted / bare:.2f}x |"
    )
    median, floor_median = statistics.median(latency), statistics.median(floor)
    print(
        f"| call to result, median (`requests`, follows the 303) | {median:.1f} ms "
        f"| {floor_median:.1f} ms (one step, no engine) | {median / floor_median:.2f}x |"
    )
    print(
        f"| call to result, p99 | {p99(latency):.1f} ms | {p99(floor):.1f} ms "
        f"| {p99(latency) / p99(floor):.2f}x |"
    )


if __name__ == "__main__":
    main()
