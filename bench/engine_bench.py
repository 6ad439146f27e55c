"""LocalEngine benchmark: what the engine adds to the cost of just running a step's process.

Run: ``python bench/engine_bench.py [--repeat N]``. Prints a markdown table of medians:
- floor: start the same interpreter and run the step runner on a no-op function, no engine
- one step: the compiled one-step no-op pipeline, from submit to Succeeded
- 10-step chain: ten no-op steps, each reading the previous one's output
- 100 workflows: 100 one-step Workflows submitted at once, default concurrency
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from noop_pipeline import floor_once, install_code, manifest, write_code

from gateway.engines.local import LocalEngine, LocalEngineSettings
from gateway.step_tokens import execution_secret_lookup
from gateway.store import Database

# The Secret every compiled step reads (its SDK token and URLs), as the gateway would give it.
SECRETS = execution_secret_lookup("k" * 48, "http://127.0.0.1:9")


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
        code = write_code(root / "code")
        (root / "floor").mkdir()
        floors = [floor_once(code, root / "floor") for _ in range(repeat * 2)]
        settings = LocalEngineSettings(data_dir=root / "data")
        install_code(settings.artifacts_root, code)
        db = Database(f"sqlite:///{root / 'bench.db'}")
        db.upgrade()
        one_step, ten_steps = manifest(1), manifest(10)
        async with LocalEngine(db, settings, secrets=SECRETS) as engine:
            await _run(engine, [one_step])  # warm up
            one = [await _run(engine, [one_step]) for _ in range(repeat * 2)]
            chain = [await _run(engine, [ten_steps]) for _ in range(repeat)]
            many = [await _run(engine, [one_step] * 100) for _ in range(max(1, repeat // 3))]
        db.dispose()
    return {
        "floor": statistics.median(floors),
        "one": statistics.median(one),
        "chain": statistics.median(chain),
        "many": statistics.median(many),
    }


async def run_workflows(folder: Path, code: Path, count: int) -> float:
    """Seconds for `count` one-step Workflows submitted at once to a fresh engine."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = LocalEngineSettings(data_dir=folder / "data")
    install_code(settings.artifacts_root, code)
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    db.upgrade()
    try:
        async with LocalEngine(db, settings, secrets=SECRETS) as engine:
            await _run(engine, [manifest(1)])  # warm up
            return await _run(engine, [manifest(1)] * count)
    finally:
        db.dispose()


def table(results: dict[str, float]) -> str:
    cores = os.cpu_count() or 1
    floor = results["floor"]
    rows = [
        ("floor: the runner on a no-op function, no engine", floor, floor, "-"),
        ("one-step Workflow, submit to Succeeded", results["one"], floor, "2x"),
        ("10-step chain", results["chain"], 10 * floor, "1.5x"),
        (f"100 one-step Workflows ({cores} cores)", results["many"], 100 * floor / cores, "1.5x"),
    ]
    lines = [
        f"Run: {datetime.now(UTC):%Y-%m-%d}, {cores} cores.",
        "",
        "| what | median | reference | ratio | aim |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, value, reference, aim in rows:
        lines.append(
            f"| {label} | {value * 1000:.1f} ms | {reference * 1000:.1f} ms "
            f"| {value / reference:.2f}x | {aim} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    arguments = parser.parse_args()
    print(table(asyncio.run(_measure(arguments.repeat))))


if __name__ == "__main__":
    main()
