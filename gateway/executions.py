"""The one place where an engine's Workflow becomes the platform's execution format.

The engine knows phases, nodes, times and output values; the store knows who started the
execution, with which inputs, and where each output goes. ``workflow_state`` reads the former,
``execution_view`` joins both into what ``get_pipeline_execution`` returns.

Dates keep ``created_at <= step start <= step end <= end_date``: the embedded engine's times
have milliseconds, Argo's whole seconds, so each time is raised to the one before it when it
is earlier (docs/ARCHITECTURE.md, "Dates").
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
    workflow: Manifest, pipeline: Pipeline, outputs: list[dict[str, Any]], created_at: datetime
) -> WorkflowState:
    """The engine's state of an execution created (by the gateway's clock) at ``created_at``."""
    name = workflow["metadata"]["name"]
    status = workflow.get("status") or {}
    nodes: dict[str, Any] = status.get("nodes") or {}
    by_name = {node["name"]: node for node in nodes.values()}
    steps, ends = [], [created_at]
    for step in pipeline.all_steps():
        node = by_name.get(f"{name}.{step.name}") or {}
        start, end = _node_times(node, created_at)
        steps.append(step_record(step.name, node.get("phase") or "Pending", start, end, pipeline))
        ends += [end] if end is not None else []
    phase = status.get("phase") or "Pending"
    root = nodes.get(name, {})
    if phase == "Succeeded":
        values = {p["name"]: p.get("value") for p in root.get("outputs", {}).get("parameters", [])}
        outputs = with_output_values(outputs, values)
    end_date = parse_argo_time(status.get("finishedAt"))
    if end_date is not None:
        end_date = max(end_date, *ends)
    return WorkflowState(
        status=phase,
        end_date=end_date,
        steps=steps,
        outputs=outputs,
        message=status.get("message"),
    )


def _node_times(
    node: dict[str, Any], created_at: datetime
) -> tuple[datetime | None, datetime | None]:
    """A step's start and end, never before the execution's creation nor the end before the
    start (Argo's whole seconds may put them there)."""
    start = parse_argo_time(node.get("startedAt"))
    end = parse_argo_time(node.get("finishedAt"))
    if start is not None:
        start = max(start, created_at)
    if end is not None:
        end = max(end, start or created_at)
    return start, end


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
