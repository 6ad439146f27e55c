"""A no-op pipeline for the benchmarks, and the floors every engine is measured against.

- floor b (``bare_step_once``): the interpreter started as a step is (``python -I``), importing
  the no-op function and calling it; no runner, no engine.
- the runner (``runner_once``): the same interpreter running the step runner
  (templates/runner.py) on that function, as a step does; no engine. It was the floor of the
  first benchmarks ("runner floor").
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
from compiler.steps import PYTHON_COMMAND
from gateway.archives import pack_code_archive
from gateway.engines.local.scripts import CompiledScripts
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


_FLAGS = list(PYTHON_COMMAND[1:])


def bare_step_once(code: Path, python: str = sys.executable) -> float:
    """Floor b: the interpreter, with a step's flags, calling the no-op function."""
    call = f"import sys; sys.path.insert(0, {str(code)!r}); from src.noop import noop; noop()"
    started = time.perf_counter()
    subprocess.run([python, *_FLAGS, "-c", call], env=_ENV, check=True, cwd=code)
    return time.perf_counter() - started


_ENV = {"PATH": os.environ.get("PATH", "")}


def floor_once(code: Path, work: Path, python: str = sys.executable) -> float:
    """The step runner on the no-op function, as a step runs it: no engine."""
    # As a step runs it: byte-compiled once by the step's interpreter (engines/local/scripts.py).
    runner = CompiledScripts(work / "scripts").compiled(python, runner_source())
    assert runner is not None
    spec = {
        "function_path": "src/noop.py",
        "function_name": "noop",
        "code_dir": str(code),
        "inputs": [],
        "outputs": [{"name": "y", "data_type": "number", "path": str(work / "y")}],
        "max_value_bytes": 60_000,
    }
    env = {**_ENV, "TENDER_STEP": json.dumps(spec)}
    started = time.perf_counter()
    subprocess.run([python, *_FLAGS, str(runner)], env=env, check=True, cwd=work)
    return time.perf_counter() - started
