"""LocalEngine benchmark: engine overhead against the cost of just starting the step's process.

Run: `python bench/engine_bench.py [--repeat N]`. Prints a markdown table of medians:
- floor: start the same interpreter on a script holding `pass`, with no engine
- one step: a one-step Workflow (script template `python`, source `pass`), submit to Succeeded
- 10-step chain: a DAG of ten such steps, each depending on the previous one
- 100 workflows: 100 one-step Workflows submitted at once, default concurrency (cores)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.engines.local import LocalEngine, LocalEngineSettings
from gateway.store import Database

STEP = {"name": "noop", "script": {"image": "python:3.12", "command": ["python"], "source": "pass"}}


def _workflow(tasks: int) -> dict[str, Any]:
    if tasks == 1:
        templates = [STEP]
    else:
        dag = [
            {"name": f"s{i}", "template": "noop", **({"depends": f"s{i - 1}"} if i else {})}
            for i in range(tasks)
        ]
        templates = [{"name": "chain", "dag": {"tasks": dag}}, STEP]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bench-"},
        "spec": {"entrypoint": templates[0]["name"], "templates": templates},
    }


async def _floor(script: Path) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(sys.executable, str(script))
    await process.wait()
    return time.perf_counter() - started


async def _run(engine: LocalEngine, manifests: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    names = [(await engine.submit_workflow(m))["metadata"]["name"] for m in manifests]
    for name in names:
        done = await engine.wait_for_workflow(name, poll_seconds=0.001)
        assert done["status"]["phase"] == "Succeeded", done["status"]
    return time.perf_counter() - started


async def _measure(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        script = root / "noop.py"
        script.write_text("pass\n")
        db = Database(f"sqlite:///{root / 'bench.db'}")
        db.upgrade()
        floors = [await _floor(script) for _ in range(repeat * 2)]
        async with LocalEngine(db, LocalEngineSettings(data_dir=root / "data")) as engine:
            await _run(engine, [_workflow(1)])  # warm up
            one = [await _run(engine, [_workflow(1)]) for _ in range(repeat * 2)]
            chain = [await _run(engine, [_workflow(10)]) for _ in range(repeat)]
            many = [
                await _run(engine, [_workflow(1) for _ in range(100)])
                for _ in range(max(1, repeat // 3))
            ]
        db.dispose()
    return {
        "floor": statistics.median(floors),
        "one": statistics.median(one),
        "chain": statistics.median(chain),
        "many": statistics.median(many),
    }


def _table(results: dict[str, float]) -> str:
    cores = os.cpu_count() or 1
    floor = results["floor"]
    rows = [
        ("floor: start the interpreter on `pass`", floor, floor, "-"),
        ("one-step Workflow, submit to Succeeded", results["one"], floor, "2x"),
        ("10-step chain", results["chain"], 10 * floor, "1.5x"),
        (f"100 one-step Workflows ({cores} cores)", results["many"], 100 * floor / cores, "1.5x"),
    ]
    lines = ["| what | median | reference | ratio | aim |", "|---|---:|---:|---:|---:|"]
    for label, value, reference, aim in rows:
        lines.append(
            f"| {label} | {value * 1000:.1f} ms | {reference * 1000:.1f} ms "
            f"| {value / reference:.2f}x | {aim} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    arguments = parser.parse_args()
    print(_table(asyncio.run(_measure(arguments.repeat))))


if __name__ == "__main__":
    main()
