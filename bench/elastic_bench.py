"""Elastic mode, every row of issue 13's table in one run beside its floors.

Run: ``python bench/elastic_bench.py`` (``--quick`` for a smaller run). Against a live
``tender serve`` (SQLite, the embedded engine) on this machine, with the same load generator
(bench/load.py: 16 keep-alive clients over several processes) for tender and for floor a:

- floor a: a bare FastAPI endpoint doing nothing, on uvicorn as ``tender serve`` runs it;
- floor b: the pipeline's own interpreter started as a step is (``python -I``), calling the no-op
  function: no runner, no engine;
- endpoint calls accepted per second (303, not waiting), every call starting a real execution;
- sustained throughput: N no-op executions queued at once (endpoint calls), until all ended;
- call to result, one call at a time (``requests`` follows the 303 to the held results);
- the step runner's own cost over floor b (same interpreter, same flags, no engine);
- a 10-step chain, run to its outputs through the API, beside ten floors b;
- the first benchmarks' rows: the runner as floor, and 100 one-step Workflows on the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))

from engine_bench import run_workflows
from load import BARE_APP, run_load
from measure import p99, samples_ms
from noop_pipeline import bare_step_once, chain, floor_once, write_code
from serving import access_token, bare_uvicorn, create_noop, served

CLIENTS = 16


def bare_fastapi(folder: Path, seconds: float) -> float:
    """Floor a: calls per second of a FastAPI endpoint that does nothing."""
    with bare_uvicorn(folder, BARE_APP) as url:
        return run_load(url, {}, {"x": 1}, clients=CLIENTS, seconds=seconds).per_second


def ended_count(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        found: int = connection.execute(
            "SELECT count(*) FROM executions "
            "WHERE status IN ('Succeeded', 'Failed', 'Error', 'Skipped')"
        ).fetchone()[0]
        return found


def wait_until_ended(database: Path, count: int, timeout: float = 900) -> float:
    """Seconds until `count` executions ended, read from the store as an operator could."""
    started = time.perf_counter()
    while ended_count(database) < count:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {ended_count(database)} of {count} executions ended")
        time.sleep(0.02)
    return time.perf_counter() - started


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, for a smoke run")
    arguments = parser.parse_args()
    samples, seconds, queued, chains = (20, 2.0, 100, 2) if arguments.quick else (100, 5.0, 500, 5)
    os.environ["SDK_VERBOSE_LOG"] = "false"
    from craft_ai_sdk import CraftAiSdk

    cores = os.cpu_count() or 1
    before = machine()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        code = write_code(root / "code")
        (root / "floor").mkdir()
        bare = bare_fastapi(root, seconds)
        with served(root / "data") as (url, token, _):
            sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
            endpoint_token = create_noop(sdk, code)
            steps = chain(10, "chain").model_dump(mode="json", exclude_none=True)["steps"]
            _create_chain(url, token, code, steps)
            python = str(root / "data" / "environments" / "noop" / "bin" / "python")
            database = root / "data" / "tender.db"

            floor_b = samples_ms(lambda: bare_step_once(code, python), samples)
            runner = samples_ms(lambda: floor_once(code, root / "floor", python), samples)

            headers = {"Authorization": f"EndpointToken {endpoint_token}"}
            endpoint = f"{url}/endpoints/noop"
            accepted = run_load(endpoint, headers, {"x": 1}, clients=CLIENTS, seconds=seconds)
            if set(accepted.statuses) != {303}:
                raise RuntimeError(f"calls answered {accepted.statuses}")
            wait_until_ended(database, accepted.requests)

            session = requests.Session()

            def call() -> None:
                answer = session.post(endpoint, json={"x": 1}, headers=headers, timeout=120)
                if answer.json().get("outputs") != {"y": {"value": 1}}:
                    raise RuntimeError(answer.text)

            latency = samples_ms(call, samples)

            done_before = ended_count(database)
            started = time.perf_counter()
            flood = run_load(endpoint, headers, {"x": 1}, clients=CLIENTS, total=queued)
            wait_until_ended(database, done_before + queued)
            sustained = queued / (time.perf_counter() - started)
            if set(flood.statuses) != {303}:
                raise RuntimeError(f"calls answered {flood.statuses}")

            chained = samples_ms(lambda: _run_chain(url, session, token), chains)
        many = asyncio.run(run_workflows(root / "engine", code, 100))
    after = machine()
    _print_table(
        before=before,
        after=after,
        rows=_rows(
            cores=cores,
            bare=bare,
            accepted=accepted.per_second,
            sustained=sustained,
            queued=queued,
            latency=latency,
            floor_b=floor_b,
            runner=runner,
            chained=chained,
            many=many,
        ),
        samples=samples,
    )


def _create_chain(url: str, token: str, code: Path, steps: list[dict[str, object]]) -> None:
    """A 10-step chain through the API (the SDK's create_pipeline takes one function)."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(code / "src", arcname="src")
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + access_token(url, token)
    fields = {"pipeline_name": "chain", **_flatten("steps", steps)}
    answer = session.post(
        f"{url}/api/v1/pipelines",
        data=fields,
        files={"step_file": ("step_file", buffer.getvalue())},
        timeout=600,
    )
    if answer.status_code != 200:
        raise RuntimeError(answer.text)
    while (
        session.get(
            f"{url}/api/v1/pipelines/chain", params={"wait_for_completion": "true"}, timeout=600
        ).json()["creation_info"]["status"]
        == "creation_pending"
    ):
        pass


def _flatten(prefix: str, value: object) -> dict[str, str]:
    """A form's nested fields, as the SDK sends them (``steps[0][inputs][0][name]``)."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return {prefix: str(value)}
    flat: dict[str, str] = {}
    for key, item in items:
        flat.update(_flatten(f"{prefix}[{key}]", item))
    return flat


def _run_chain(url: str, session: requests.Session, token: str) -> None:
    headers = {"Authorization": "Bearer " + access_token(url, token)}
    started = session.post(f"{url}/api/v1/pipelines/chain/run", headers=headers, timeout=60)
    execution = started.json()["execution_id"]
    answer = session.get(
        f"{url}/api/v1/executions/{execution}/outputs",
        params={"wait_for_completion": "true"},
        headers=headers,
        timeout=600,
    )
    if answer.status_code != 200:
        raise RuntimeError(answer.text)


def _rows(
    *,
    cores: int,
    bare: float,
    accepted: float,
    sustained: float,
    queued: int,
    latency: list[float],
    floor_b: list[float],
    runner: list[float],
    chained: list[float],
    many: float,
) -> list[tuple[str, str, str, str, str]]:
    b50, b99 = statistics.median(floor_b), p99(floor_b)
    r50 = statistics.median(runner)
    l50, l99 = statistics.median(latency), p99(latency)
    ceiling = cores / (b50 / 1000)
    c50 = statistics.median(chained)
    return [
        ("floor a: bare FastAPI on uvicorn, 16 clients", f"{bare:,.0f}/s", "-", "-", "-"),
        (
            "floor b: the step's interpreter (`python -I`) calling the no-op, median / p99",
            f"{b50:.1f} / {b99:.1f} ms",
            "-",
            "-",
            "-",
        ),
        (
            "endpoint calls accepted per second (303, 16 clients), each starting an execution",
            f"{accepted:,.0f}/s",
            f"{bare:,.0f}/s (a)",
            f"{accepted / bare:.2f}x",
            ">= 0.5x",
        ),
        (
            f"sustained throughput, {queued} no-op executions queued at once, {cores} cores",
            f"{sustained:.1f}/s",
            f"{ceiling:.1f}/s (cores / b)",
            f"{sustained / ceiling:.2f}x",
            ">= 0.7x",
        ),
        (
            "call to result, one no-op step, median",
            f"{l50:.1f} ms",
            f"{b50:.1f} ms (b)",
            f"{l50 / b50:.2f}x",
            "<= 1.5x",
        ),
        ("call to result, p99", f"{l99:.1f} ms", f"{b99:.1f} ms (b)", f"{l99 / b99:.2f}x", "<= 2x"),
        (
            "the step runner's own cost over floor b (medians)",
            f"{r50 - b50:+.1f} ms",
            "-",
            "-",
            "<= 5 ms",
        ),
        (
            "a 10-step chain, run to its outputs through the API, median",
            f"{c50:.0f} ms",
            f"{10 * b50:.0f} ms (10 b)",
            f"{c50 / (10 * b50):.2f}x",
            "<= 1.3x",
        ),
        (
            "old row: runner floor (the runner on the no-op, no engine)",
            f"{r50:.1f} ms",
            "-",
            "-",
            "-",
        ),
        (
            f"old row: 100 one-step Workflows on the engine ({cores} cores)",
            f"{many * 1000:.0f} ms",
            f"{100 * r50 / cores:.0f} ms (100 runners / cores)",
            f"{many * 1000 / (100 * r50 / cores):.2f}x",
            "1.5x",
        ),
    ]


def _print_table(
    *, before: str, after: str, rows: list[tuple[str, str, str, str, str]], samples: int
) -> None:
    end_load = after.rsplit("load ", 1)[1]
    print(
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {before} at the start, {end_load} at the "
        "end."
    )
    print(
        f"Load generator: bench/load.py, {CLIENTS} keep-alive http.client connections over "
        f"several processes; latencies: {samples} calls one at a time."
    )
    print()
    print("| measure | tender | floor | ratio | goal |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
