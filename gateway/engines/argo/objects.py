"""Argo's objects as the Kubernetes API holds them, and as the Engine protocol returns them.

The API's lists drop each item's ``apiVersion`` and ``kind``; a large Workflow's nodes may be
gzipped into ``status.compressedNodes`` (the controller does it past its size limit). The engine
returns every object whole, with its nodes readable.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from gateway.engines.errors import (
    CronWorkflowNotFoundError,
    ObjectNotFoundError,
    WorkflowNotFoundError,
    WorkflowTemplateNotFoundError,
)

__all__ = [
    "CRON_WORKFLOWS",
    "FINISHED_PHASES",
    "STOP_MESSAGE_ANNOTATION",
    "WORKFLOWS",
    "WORKFLOW_TEMPLATES",
    "Kind",
    "newest_first",
    "readable",
]

_log = logging.getLogger("tender.engines.argo")
API_VERSION = "argoproj.io/v1alpha1"
FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Error"})
# The message `stop_workflow` was given: Argo writes its own on the nodes it stops.
STOP_MESSAGE_ANNOTATION = "tender.io/stop-message"
_ARGO_STOP_MESSAGE = "workflow shutdown with strategy"
_KILLED = re.compile(r"\(exit code 1(?:43|37)\)$")


@dataclass(frozen=True)
class Kind:
    name: str  # as in `kind:`
    plural: str  # as in the API's paths
    not_found: type[ObjectNotFoundError]

    def path(self, namespace: str, name: str = "") -> str:
        base = f"/apis/{API_VERSION}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{name}" if name else base


WORKFLOWS = Kind("Workflow", "workflows", WorkflowNotFoundError)
WORKFLOW_TEMPLATES = Kind("WorkflowTemplate", "workflowtemplates", WorkflowTemplateNotFoundError)
CRON_WORKFLOWS = Kind("CronWorkflow", "cronworkflows", CronWorkflowNotFoundError)


def readable(item: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """``item`` with its ``apiVersion`` and ``kind``, and a Workflow's nodes uncompressed, the
    nodes a stop ended carrying the stop's message."""
    item = {"apiVersion": API_VERSION, "kind": kind.name, **item}
    if kind is not WORKFLOWS:
        return item
    status = dict(item.get("status") or {})
    if compressed := status.pop("compressedNodes", None):
        status["nodes"] = json.loads(gzip.decompress(base64.b64decode(compressed)))
    elif status.get("offloadNodeStatusVersion") and not status.get("nodes"):
        _log.warning(
            "workflow %s has its nodes offloaded to Argo's database, which the gateway does "
            "not read: turn off persistence.nodeStatusOffLoad",
            item.get("metadata", {}).get("name"),
        )
    stop_message = (item.get("metadata", {}).get("annotations") or {}).get(STOP_MESSAGE_ANNOTATION)
    shutdown = (item.get("spec") or {}).get("shutdown")
    if (stop_message or shutdown) and status.get("nodes"):
        # Argo's own words for a node a stop ended, unless its pod's kill was seen first.
        message = stop_message or f"{_ARGO_STOP_MESSAGE}:  {shutdown}"
        status["nodes"] = {
            node_id: _with_stop_message(node, message, killed_by_it=bool(shutdown))
            for node_id, node in status["nodes"].items()
        }
    item["status"] = status
    return item


def _with_stop_message(node: dict[str, Any], message: str, *, killed_by_it: bool) -> dict[str, Any]:
    """A node the stop ended says so: in Argo's words, or, when its pod's end was seen before
    the controller marked the node, in those of the kill (SIGTERM's 143, SIGKILL's 137)."""
    said = node.get("message") or ""
    if said.startswith(_ARGO_STOP_MESSAGE) or (killed_by_it and _KILLED.search(said)):
        return {**node, "message": message}
    return node


def newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(item: dict[str, Any]) -> tuple[str, str]:
        metadata = item["metadata"]
        return (metadata.get("creationTimestamp") or "", metadata["name"])

    return sorted(items, key=key, reverse=True)
