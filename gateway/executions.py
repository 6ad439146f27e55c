"""The one place where an engine's Workflow becomes the platform's execution format.

The engine knows phases, nodes, times and output values; the store knows who started the
execution, with which inputs, and where each output goes. ``workflow_state`` reads the former,
``execution_view`` joins both into what ``get_pipeline_execution`` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compiler import Pipeline
from gateway.dates import format_date, parse_argo_time
from gateway.engines.base import Manifest
from gateway.store.records import ExecutionRecord

__all__ = [
    "WorkflowState",
    "execution_view",
    "public_io",
    "step_record",
    "with_output_values",
    "workflow_state",
]

# Argo node phases the SDK has no word for (EXECUTION_STATUS): a DAG task whose `depends`
# was not met is "Omitted" in Argo, which the platform calls Skipped.
_NODE_STATUS = {"Omitted": "Skipped"}
# Fields of the stored input/output records that stay inside the gateway.
_INTERNAL = ("key", "step", "output")


@dataclass(frozen=True)
class WorkflowState:
    status: str
    end_date: datetime | None
    steps: list[dict[str, Any]]
    outputs: list[dict[str, Any]]  # the record's outputs, with values once Succeeded
    message: str | None


def workflow_state(
    workflow: Manifest, pipeline: Pipeline, outputs: list[dict[str, Any]]
) -> WorkflowState:
    name = workflow["metadata"]["name"]
    status = workflow.get("status") or {}
    nodes: dict[str, Any] = status.get("nodes") or {}
    by_name = {node["name"]: node for node in nodes.values()}
    steps = [
        _step(step.name, by_name.get(f"{name}.{step.name}"), pipeline)
        for step in pipeline.all_steps()
    ]
    phase = status.get("phase") or "Pending"
    root = nodes.get(name, {})
    if phase == "Succeeded":
        values = {p["name"]: p.get("value") for p in root.get("outputs", {}).get("parameters", [])}
        outputs = with_output_values(outputs, values)
    return WorkflowState(
        status=phase,
        end_date=parse_argo_time(status.get("finishedAt")),
        steps=steps,
        outputs=outputs,
        message=status.get("message"),
    )


def _step(step_name: str, node: dict[str, Any] | None, pipeline: Pipeline) -> dict[str, Any]:
    node = node or {}
    return step_record(
        step_name,
        node.get("phase") or "Pending",
        parse_argo_time(node.get("startedAt")),
        parse_argo_time(node.get("finishedAt")),
        pipeline,
    )


def step_record(
    step_name: str,
    phase: str,
    started: datetime | None,
    finished: datetime | None,
    pipeline: Pipeline,
) -> dict[str, Any]:
    """One item of an execution's ``steps``, from its node's phase and times."""
    config = pipeline.container_config
    return {
        "name": step_name,
        "status": _NODE_STATUS.get(phase, phase),
        "start_date": format_date(started),
        "end_date": format_date(finished),
        "commit_id": None,
        "repository_url": config.repository_url,
        "repository_branch": config.repository_branch,
        "requirements_path": config.requirements_path,
        "origin": "git_repository" if config.repository_url else "local",
    }


def with_output_values(
    outputs: list[dict[str, Any]], values: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The record's outputs with the values the function returned (JSON text by output name)
    filled in where they go to the execution or the endpoint."""
    filled = []
    for stored in outputs:
        output = dict(stored)
        if output["data_type"] != "file" and output["mapping_type"] in ("run", "endpoint"):
            text = values.get(output["pipeline_output_name"])
            output["value"] = None if text is None else json.loads(text)
        filled.append(output)
    return filled


def public_io(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as the SDK reads them, without the gateway's own bookkeeping."""
    return [{k: v for k, v in item.items() if k not in _INTERNAL} for item in items]


def execution_view(record: ExecutionRecord) -> dict[str, Any]:
    return {
        "execution_id": record.id,
        "status": record.status,
        "created_at": format_date(record.created_at),
        "created_by": record.created_by,
        "end_date": format_date(record.end_date),
        "pipeline_name": record.pipeline_name,
        "deployment_name": record.deployment_name,
        "steps": record.steps,
        "inputs": public_io(record.inputs),
        "outputs": public_io(record.outputs),
    }
