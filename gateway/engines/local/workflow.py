"""One Workflow from `Running` to its final phase: the entrypoint, the workflow deadline, the
exit handler, and the final phase and message (workflow/controller/operator.go)."""

from __future__ import annotations

import asyncio

from gateway.engines.base import Manifest
from gateway.engines.local.context import Call, WorkflowRun
from gateway.engines.local.executor import execute
from gateway.engines.local.status import count_progress, workflow_failures

__all__ = [
    "DEADLINE_MESSAGE",
    "STEP_DEADLINE_MESSAGE",
    "run_workflow",
    "stop_message",
]

DEADLINE_MESSAGE = "Max duration limit exceeded"
STEP_DEADLINE_MESSAGE = "Step exceeded its deadline"


def stop_message(strategy: str = "Stop") -> str:
    return f"Stopped with strategy '{strategy}'"


async def run_workflow(run: WorkflowRun) -> tuple[str, str | None]:
    """Execute the entrypoint and the exit handler; return the workflow's phase and message."""
    spec = run.spec
    loop = asyncio.get_running_loop()
    started = loop.time()
    timer = None
    if spec.get("activeDeadlineSeconds") is not None:
        timer = loop.call_later(
            float(spec["activeDeadlineSeconds"]),
            run.request_stop,
            DEADLINE_MESSAGE,
            STEP_DEADLINE_MESSAGE,
        )
    arguments: Manifest = {
        "parameters": [
            {"name": p["name"], "value": run.scope[f"workflow.parameters.{p['name']}"]}
            for p in spec.get("arguments", {}).get("parameters", [])
            if f"workflow.parameters.{p['name']}" in run.scope
        ]
    }
    entry = Call(run.name, run.name, spec["entrypoint"], arguments, None, (), run.stop)
    try:
        main = await execute(run, entry)
    finally:
        if timer is not None:
            timer.cancel()
    phase, message = main["phase"], main.get("message")
    if run.stop_message is not None:
        phase, message = "Failed", run.stop_message
    if spec.get("onExit"):
        run.scope["workflow.status"] = phase
        run.scope["workflow.failures"] = workflow_failures(run.nodes, run.pod_names)
        run.scope["workflow.duration"] = f"{loop.time() - started:.6f}"
        name = f"{run.name}.onExit"
        handler = Call(name, name, spec["onExit"], {}, None, (), asyncio.Event())
        exit_node = await execute(run, handler)
        if phase == "Succeeded" and exit_node["phase"] != "Succeeded":
            phase, message = exit_node["phase"], exit_node.get("message")
    run.status["progress"] = count_progress(run.nodes)
    return phase, message
