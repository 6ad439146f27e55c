"""A no-op pipeline for the benchmarks, and the floor every engine is measured against.

The floor is what a step costs with no engine at all: start the interpreter and run the step
runner (templates/runner.py) on a function that does nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compiler import Pipeline, Run, compile_run
from compiler.keys import code_key
from gateway.archives import pack_code_archive
from templates import runner_source

FUNCTION = "def noop(x=None):\n    return {'y': 1}\n"


def write_code(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "noop.py").write_text(FUNCTION)
    return folder


def chain(steps: int, name: str = "noop") -> Pipeline:
    """``steps`` no-op steps, each reading the previous one's output (so they run in order)."""
    return Pipeline.model_validate(
        {
            "pipeline_name": name,
            "steps": [
                {
                    "name": f"s{i}",
                    "function_path": "src/noop.py",
                    "function_name": "noop",
                    "inputs": [{"name": "x", "data_type": "number", "source": f"s{i - 1}.y"}]
                    if i
                    else [],
                    "outputs": [{"name": "y", "data_type": "number"}],
                }
                for i in range(steps)
            ],
        }
    )


def install_code(artifacts: Path, code: Path, name: str = "noop") -> None:
    """Put the pipeline's code archive where the engine fetches it."""
    target = artifacts / code_key(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(pack_code_archive(code))


def manifest(steps: int) -> dict[str, Any]:
    return compile_run(chain(steps), Run())


def floor_once(code: Path, work: Path) -> float:
    """Start the interpreter on the runner and a no-op function: a step with no engine."""
    runner = work / "runner.py"
    if not runner.exists():
        runner.write_text(runner_source())
    spec = {
        "function_path": "src/noop.py",
        "function_name": "noop",
        "code_dir": str(code),
        "inputs": [],
        "outputs": [{"name": "y", "data_type": "number", "path": str(work / "y")}],
        "max_value_bytes": 60_000,
    }
    env = {"PATH": os.environ.get("PATH", ""), "TENDER_STEP": json.dumps(spec)}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(runner)], env=env, check=True, cwd=work)
    return time.perf_counter() - started
