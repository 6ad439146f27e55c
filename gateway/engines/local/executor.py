"""Execute one template call: the node it creates, its inputs, deadline and retries.

DAG and steps templates call back into `execute` for their children.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from gateway.engines.base import Manifest
from gateway.engines.local.context import Call, Deadline, WorkflowRun
from gateway.engines.local.dag import run_dag
from gateway.engines.local.durations import parse_duration
from gateway.engines.local.inputs import BindingError, bind_inputs, input_scope
from gateway.engines.local.pods import run_pod
from gateway.engines.local.steps import run_steps
from gateway.engines.local.templating import UnresolvedTagError, substitute

__all__ = ["TEMPLATE_DEADLINE_MESSAGE", "execute"]

TEMPLATE_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
_RETRIED_PHASES = {
    "Always": {"Failed", "Error"},
    "OnFailure": {"Failed"},
    "OnError": {"Error"},
    "OnTransientError": set(),  # no local failure is known to be transient
}


async def execute(run: WorkflowRun, call: Call) -> Manifest:
    """Run `call` to completion and return its (finished) node."""
    template = run.templates[call.template_name]
    if "retryStrategy" in template:
        return await _execute_with_retries(run, call, template)
    return await _execute_once(run, call, template, call.node_name, call.display_name, retries=0)


def _node_type(template: Manifest) -> str:
    return "DAG" if "dag" in template else "Steps" if "steps" in template else "Pod"


async def _execute_once(
    run: WorkflowRun, call: Call, template: Manifest, name: str, display: str, *, retries: int
) -> Manifest:
    node_type = _node_type(template)
    node = run.add_node(
        name,
        display,
        node_type,
        template_name=template["name"],
        boundary_id=call.boundary_id,
        phase="Pending" if node_type == "Pod" else "Running",
    )
    try:
        inputs = bind_inputs(template, call.arguments, run.scope)
        timeout = _own_timeout(template, inputs)
    except BindingError as exc:
        return run.finish(node, "Error", str(exc))
    if inputs:
        node["inputs"] = inputs
    if call.cancel.is_set():
        return run.finish(node, "Failed", run.node_stop_message)
    deadlines = call.deadlines
    if timeout is not None:
        at = asyncio.get_running_loop().time() + timeout
        deadlines = (*deadlines, Deadline(at, TEMPLATE_DEADLINE_MESSAGE))
    if node["type"] == "Pod":
        await run_pod(run, node, template, deadlines, call.cancel, retries=retries)
    elif node["type"] == "DAG":
        await run_dag(run, node, template, replace(call, deadlines=deadlines), execute)
    else:
        await run_steps(run, node, template, replace(call, deadlines=deadlines), execute)
    return node


def _own_timeout(template: Manifest, inputs: Manifest) -> float | None:
    """`activeDeadlineSeconds` or `timeout`, after substituting the template's inputs."""
    raw = template.get("activeDeadlineSeconds", template.get("timeout"))
    if raw is None:
        return None
    try:
        return parse_duration(substitute(str(raw), input_scope(inputs)))
    except (UnresolvedTagError, ValueError) as exc:
        raise BindingError(f"invalid deadline {raw!r}: {exc}") from exc


async def _execute_with_retries(run: WorkflowRun, call: Call, template: Manifest) -> Manifest:
    strategy: Manifest = template["retryStrategy"]
    limit = int(strategy["limit"]) if "limit" in strategy else None
    retried = _RETRIED_PHASES[str(strategy.get("retryPolicy", "OnFailure"))]
    node = run.add_node(
        call.node_name, call.display_name, "Retry", template_name=None, boundary_id=call.boundary_id
    )
    loop = asyncio.get_running_loop()
    started, attempt, message = loop.time(), 0, None
    while True:
        name = f"{call.node_name}({attempt})"
        run.add_child(node["id"], run.node_id(name))
        child = await _execute_once(
            run, call, template, name, f"{call.display_name}({attempt})", retries=attempt
        )
        message = child.get("message")
        if child["phase"] not in retried or call.cancel.is_set():
            break
        if limit is not None and attempt >= limit:
            message = "No more retries left"
            break
        delay = _backoff(strategy.get("backoff"), attempt)
        max_duration = strategy.get("backoff", {}).get("maxDuration")
        if max_duration is not None and loop.time() + delay - started > parse_duration(
            max_duration
        ):
            message = "Backoff would exceed max duration limit"
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.cancel.wait(), delay)
        attempt += 1
    for key in ("inputs", "outputs"):
        if key in child:
            node[key] = child[key]
    return run.finish(node, child["phase"], message)


def _backoff(backoff: Manifest | None, attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: duration * factor**attempt, at most `cap`."""
    if not backoff or "duration" not in backoff:
        return 0.0
    delay = parse_duration(backoff["duration"]) * float(backoff.get("factor", 1)) ** attempt
    if "cap" in backoff:
        delay = min(delay, parse_duration(backoff["cap"]))
    return delay
