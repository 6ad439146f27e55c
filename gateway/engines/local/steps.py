"""Steps templates: groups run one after the other, the steps of a group in parallel
(workflow/controller/steps.go). Nodes: `Steps` > `StepGroup` `[i]` > one node per step."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.engines.base import Manifest
from gateway.engines.local.children import ChildrenRun
from gateway.engines.local.context import Call, Execute, WorkflowRun
from gateway.engines.local.inputs import BindingError, resolve_arguments
from gateway.engines.local.results import (
    exit_hook_of,
    outbound_nodes,
    result_scopes,
    run_exit_hook,
    template_outputs,
)
from gateway.engines.local.status import is_failure
from gateway.engines.local.templating import UnresolvedTagError, substitute
from gateway.engines.local.when import evaluate_when

__all__ = ["run_steps"]


class _Steps(ChildrenRun):
    prefix = "steps"


async def run_steps(
    run: WorkflowRun, node: Manifest, template: Manifest, call: Call, execute: Execute
) -> None:
    steps = _Steps(run, node, template, call, execute)
    parents = [node["id"]]
    phase, message = "Succeeded", None
    for index, group in enumerate(template["steps"]):
        if call.cancel.is_set():
            phase, message = "Failed", run.node_stop_message
            break
        group_node = _start_group(steps, index, parents)
        children = await asyncio.gather(*(_run_step(steps, group_node, s) for s in group))
        steps.results.update({s["name"]: child for s, child in zip(group, children, strict=True)})
        failed = [c for s, c in zip(group, children, strict=True) if _fails(s, c)]
        parents = [o for child in children for o in outbound_nodes(run, child)]
        if failed:
            message = f"child '{failed[0]['id']}' failed"
            run.finish(group_node, "Failed", message)
            phase = "Failed"
            break
        run.finish(group_node, "Succeeded")
    node["outboundNodes"] = [p for p in parents if p != node["id"]]
    if phase == "Succeeded":
        scope, artifact_scope = steps.scopes()
        try:
            outputs = template_outputs(run, template, scope, artifact_scope)
        except (BindingError, UnresolvedTagError) as exc:
            phase, message, outputs = "Error", str(exc), {}
        if outputs:
            node["outputs"] = outputs
    run.finish(node, phase, message)


def _start_group(steps: _Steps, index: int, parents: list[str]) -> Manifest:
    name = f"{steps.node['name']}[{index}]"
    for parent in parents:
        steps.run.add_child(parent, steps.run.node_id(name))
    return steps.run.add_node(
        name,
        f"[{index}]",
        "StepGroup",
        template_name=steps.template["name"],
        boundary_id=steps.node["id"],
    )


def _fails(step: Manifest, child: Manifest) -> bool:
    continue_on: Manifest = step.get("continueOn", {})
    if child["phase"] == "Failed" and str(continue_on.get("failed", "")).lower() == "true":
        return False
    if child["phase"] == "Error" and str(continue_on.get("error", "")).lower() == "true":
        return False
    return is_failure(child["phase"])


async def _run_step(steps: _Steps, group: Manifest, step: Manifest) -> Manifest:
    run = steps.run
    name = f"{group['name']}.{step['name']}"
    run.add_child(group["id"], run.node_id(name))
    scope, artifact_scope = steps.scopes()
    try:
        if "when" in step:
            condition = substitute(str(step["when"]), scope)
            if not evaluate_when(condition):
                return _leaf(steps, name, step, "Skipped", f"when '{condition}' evaluated false")
        arguments = resolve_arguments(step.get("arguments"), scope, artifact_scope)
    except (BindingError, UnresolvedTagError, ValueError) as exc:
        return _leaf(steps, name, step, "Error", str(exc))
    call = Call(
        name,
        step["name"],
        step["template"],
        arguments,
        steps.node["id"],
        steps.call.deadlines,
        steps.call.cancel,
    )
    async with steps.slots or contextlib.nullcontext():
        child = await steps.execute(run, call)
    hook_scope, hook_artifacts = result_scopes(run, "steps", {step["name"]: child})
    await run_exit_hook(
        run,
        exit_hook_of(step),
        child,
        scopes=({**scope, **hook_scope}, {**artifact_scope, **hook_artifacts}),
        call=call,
        execute=steps.execute,
    )
    return child


def _leaf(steps: _Steps, name: str, step: Manifest, phase: str, message: str) -> Manifest:
    node = steps.run.add_node(
        name,
        step["name"],
        "Skipped",
        template_name=step["template"],
        boundary_id=steps.node["id"],
        phase=phase,
    )
    return steps.run.finish(node, phase, message)
