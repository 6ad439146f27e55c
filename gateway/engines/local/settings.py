"""How the local engine is configured, and the two hooks the gateway plugs in."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.engines.base import Manifest

__all__ = [
    "InterpreterResolver",
    "LocalEngineSettings",
    "SecretLookup",
    "default_base_env",
    "resolve_default_interpreter",
]

SecretLookup = Callable[[str], Awaitable[Mapping[str, str] | None]]
"""`secret name -> its data` (key to value), or None when there is no such Secret."""

InterpreterResolver = Callable[[str, Manifest], str | None]
"""`(command[0], the Workflow) -> executable path`, or None when there is no such program."""

_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")


def _cpu_count() -> int:
    return os.cpu_count() or 1


def default_base_env() -> dict[str, str]:
    """The gateway's PATH, HOME and locale only: a step never sees the gateway's own settings."""
    return {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}


def resolve_default_interpreter(command: str, workflow: Manifest) -> str | None:
    """`python`/`python3` run with this interpreter; other programs are looked up on PATH."""
    del workflow
    if command in ("python", "python3"):
        return sys.executable
    if os.path.isabs(command):
        return command if os.access(command, os.X_OK) else None
    return shutil.which(command)


@dataclass(frozen=True, kw_only=True)
class LocalEngineSettings:
    data_dir: Path
    """Holds `work/` (a folder per running step) and, unless `artifacts_dir` is set,
    `artifacts/`."""
    artifacts_dir: Path | None = None
    namespace: str = "default"
    max_processes: int = field(default_factory=_cpu_count)
    """Step processes running at once across all workflows (the CPU bound); other pods wait
    `Pending`."""
    max_workflows: int = field(default_factory=lambda: 2 * _cpu_count())
    """Workflows running at once; later submissions wait `Pending`. Twice the process bound, so
    that one workflow's bookkeeping overlaps another's step (bench/engine_bench.py)."""
    kill_grace_seconds: float = 5.0
    """Between SIGTERM and SIGKILL on stop or deadline (a pod's terminationGracePeriodSeconds)."""
    max_output_parameter_bytes: int = 256 * 1024
    """A `valueFrom.path` output parameter larger than this fails the step (Argo: 256 kB)."""
    max_result_bytes: int = 256 * 1024
    """`outputs.result` keeps the last this-many characters of stdout, as Argo does."""
    keep_work_dirs: bool = False
    step_nice: int = 10
    """Steps run with this `nice` value, so that busy steps do not starve the gateway that
    serves HTTP in the same machine (0: the gateway's own priority)."""
    base_env: Mapping[str, str] = field(default_factory=default_base_env)

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def unpacked_dir(self) -> Path:
        """Input archives unpacked once per content (`unpacked.py`)."""
        return self.data_dir / "unpacked"

    @property
    def artifacts_root(self) -> Path:
        return self.artifacts_dir or self.data_dir / "artifacts"
