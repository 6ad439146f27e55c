"""Argo-shaped node and workflow status (`NodeStatus`, `WorkflowStatus` in Argo's schema)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.engines.base import Manifest
from gateway.engines.local.clock import format_status_time

__all__ = [
    "COMPLETED_LABEL",
    "FULFILLED",
    "PHASE_LABEL",
    "count_progress",
    "finish_node",
    "is_failure",
    "new_node",
    "workflow_failures",
]

FULFILLED = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"


def new_node(
    node_id: str,
    name: str,
    display_name: str,
    node_type: str,
    *,
    template_name: str | None,
    boundary_id: str | None,
    now: datetime,
    phase: str = "Running",
) -> Manifest:
    node: Manifest = {"id": node_id, "name": name, "displayName": display_name, "type": node_type}
    if template_name is not None:
        node["templateName"] = template_name
    node["phase"] = phase
    if boundary_id is not None:
        node["boundaryID"] = boundary_id
    node["startedAt"] = format_status_time(now)
    node["finishedAt"] = format_status_time(now) if phase in FULFILLED else None
    if node_type == "Pod":
        node["progress"] = "0/1"
    return node


def finish_node(node: Manifest, phase: str, now: datetime, message: str | None = None) -> Manifest:
    node["phase"] = phase
    node["finishedAt"] = format_status_time(now)
    if message:
        node["message"] = message
    if node["type"] == "Pod":
        node["progress"] = "1/1"
    return node


def is_failure(phase: str) -> bool:
    return phase in ("Failed", "Error")


def count_progress(nodes: dict[str, Manifest]) -> str:
    """Argo's `progress`: fulfilled pods over all pods."""
    pods = [node for node in nodes.values() if node["type"] == "Pod"]
    done = sum(1 for node in pods if node["phase"] in FULFILLED)
    return f"{done}/{len(pods)}"


def workflow_failures(nodes: dict[str, Manifest], pod_names: dict[str, str]) -> str:
    """`{{workflow.failures}}`: a JSON list of the failed pod nodes, as Argo renders it."""
    failures: list[dict[str, Any]] = [
        {
            "displayName": node["displayName"],
            "message": node.get("message", ""),
            "templateName": node.get("templateName", ""),
            "phase": node["phase"],
            "podName": pod_names.get(node["id"], ""),
            "finishedAt": node.get("finishedAt"),
        }
        for node in nodes.values()
        if node["type"] == "Pod" and is_failure(node["phase"])
    ]
    return json.dumps(failures, separators=(",", ":"))
