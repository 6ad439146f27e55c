"""What finished tasks and steps expose to later ones: `tasks.<t>.*` / `steps.<s>.*` variables,
artifact references, outbound nodes, and the exit hooks that run after a task or step."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.engines.base import Manifest
from gateway.engines.local.context import Call, Execute, WorkflowRun
from gateway.engines.local.inputs import BindingError, resolve_arguments
from gateway.engines.local.templating import UnresolvedTagError, substitute

__all__ = ["exit_hook_of", "outbound_nodes", "result_scopes", "run_exit_hook", "template_outputs"]


def result_scopes(
    run: WorkflowRun, prefix: str, results: Mapping[str, Manifest]
) -> tuple[dict[str, str], dict[str, Manifest]]:
    """`<prefix>.<name>.*` variables and artifact references for every finished child."""
    scope: dict[str, str] = {}
    artifacts: dict[str, Manifest] = {}
    for name, node in results.items():
        base = f"{prefix}.{name}"
        scope[f"{base}.id"] = node["id"]
        scope[f"{base}.status"] = node["phase"]
        scope[f"{base}.startedAt"] = node.get("startedAt") or ""
        scope[f"{base}.finishedAt"] = node.get("finishedAt") or ""
        outputs: Manifest = node.get("outputs", {})
        if node["phase"] in ("Skipped", "Omitted"):
            outputs = _default_outputs(run, node)
        if "exitCode" in outputs:
            scope[f"{base}.exitCode"] = outputs["exitCode"]
        if "result" in outputs:
            scope[f"{base}.outputs.result"] = outputs["result"]
        for parameter in outputs.get("parameters", []):
            scope[f"{base}.outputs.parameters.{parameter['name']}"] = str(parameter["value"])
        for artifact in outputs.get("artifacts", []):
            artifacts[f"{base}.outputs.artifacts.{artifact['name']}"] = artifact
    return scope, artifacts


def _default_outputs(run: WorkflowRun, node: Manifest) -> Manifest:
    """A skipped producer's parameters resolve to their `valueFrom.default` (Argo v4.0.7+)."""
    template = run.templates.get(node.get("templateName", ""), {})
    parameters = [
        {"name": p["name"], "value": p["valueFrom"]["default"]}
        for p in template.get("outputs", {}).get("parameters", [])
        if "default" in p.get("valueFrom", {})
    ]
    return {"parameters": parameters}


def outbound_nodes(run: WorkflowRun, node: Manifest) -> list[str]:
    """The nodes a dependent is attached under, as Argo's `getOutboundNodes` picks them."""
    if node["type"] == "Retry" and node.get("children"):
        return [node["children"][-1]]
    if node["type"] in ("DAG", "Steps") and node.get("outboundNodes"):
        return list(node["outboundNodes"])
    return [node["id"]]


async def run_exit_hook(
    run: WorkflowRun,
    hook: Manifest | None,
    child: Manifest,
    *,
    scopes: tuple[Mapping[str, str], Mapping[str, Manifest]],
    call: Call,
    execute: Execute,
) -> None:
    """Run a task's or step's `hooks.exit` (or `onExit`) once the child has finished."""
    if hook is None:
        return
    name = f"{child['name']}.onExit"
    try:
        arguments = resolve_arguments(hook.get("arguments"), *scopes)
    except BindingError:
        arguments = {}
    run.add_child(child["id"], run.node_id(name))
    hook_call = Call(
        name,
        f"{child['displayName']}.onExit",
        hook["template"],
        arguments,
        call.boundary_id,
        call.deadlines,
        asyncio.Event(),
    )  # never stopped, as in Argo
    await execute(run, hook_call)


def exit_hook_of(item: Manifest) -> Manifest | None:
    hooks: Manifest = item.get("hooks", {})
    if "exit" in hooks:
        exit_hook: Manifest = hooks["exit"]
        return exit_hook
    return {"template": item["onExit"]} if "onExit" in item else None


def template_outputs(
    run: WorkflowRun,
    template: Manifest,
    scope: Mapping[str, str],
    artifact_scope: Mapping[str, Manifest],
) -> Manifest:
    """A DAG's or steps template's outputs, from `valueFrom.parameter`, `value` or `from`."""
    declared: Manifest = template.get("outputs", {})
    parameters = []
    for parameter in declared.get("parameters", []):
        value_from = parameter.get("valueFrom", {})
        raw = value_from.get("parameter", parameter.get("value"))
        try:
            value = substitute(str(raw), scope)
        except UnresolvedTagError:
            if "default" not in value_from:
                raise
            value = str(value_from["default"])
        parameters.append({**parameter, "value": value})
        if parameter.get("globalName"):
            run.set_global_parameter(parameter["globalName"], value)
    artifacts = []
    for artifact in declared.get("artifacts", []):
        resolved = resolve_arguments({"artifacts": [artifact]}, scope, artifact_scope)["artifacts"]
        artifacts += resolved
    outputs: Manifest = {}
    if parameters:
        outputs["parameters"] = parameters
    if artifacts:
        outputs["artifacts"] = artifacts
    return outputs
