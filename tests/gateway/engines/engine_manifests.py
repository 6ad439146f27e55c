"""Small manifests and process checks shared by the engine tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from gateway.engines.local import LocalEngine

EngineFactory = Callable[..., AbstractAsyncContextManager[LocalEngine]]

# This test run's temporary root (conftest.py sets it): other runs on the same machine start
# workflows of the same names, and only this run's steps, whose TMPDIR is under it, are ours.
run_root: list[Path] = []


def workflow(templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A small Workflow manifest; the first template is the entrypoint."""
    metadata = spec.pop("metadata", {"generateName": "test-"})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {"entrypoint": templates[0]["name"], "templates": templates, **spec},
    }


def sh(name: str, script: str, **template: Any) -> dict[str, Any]:
    return {
        "name": name,
        "container": {"image": "alpine", "command": ["sh", "-c", script]},
        **template,
    }


def live_processes(workflow_name: str) -> list[int]:
    """Pids of processes started for `workflow_name` that are still alive (read from /proc)."""
    found = []
    marker = f"ARGO_WORKFLOW_NAME={workflow_name}".encode()
    ours = [f"TMPDIR={root}/".encode() for root in run_root]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        variables = environ.split(b"\0")
        mine = not ours or any(v.startswith(prefix) for v in variables for prefix in ours)
        if marker in variables and mine and state != "Z":
            found.append(int(entry.name))
    return found
