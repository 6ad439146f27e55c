"""Workflow-wide variables (`{{workflow.*}}`, docs/variables.md "Global")."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime

from gateway.engines.base import Manifest
from gateway.engines.local.templating import substitute

__all__ = ["workflow_scope"]

_SCHEDULED_TIME = "workflows.argoproj.io/scheduled-time"
_SEPARATOR = "\x1f"  # ASCII unit separator: C strftime stops at NUL


def _strftime_chars() -> str:
    """The strftime directives this platform knows, of those Argo offers."""
    known = []
    for char in "aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ":
        with contextlib.suppress(ValueError):
            datetime(2000, 1, 1).strftime(f"%{char}")
            known.append(char)
    return "".join(known)


_STRFTIME = _strftime_chars()
# One strftime call for all of them: a workflow's scope is built at each submission.
_STRFTIME_ALL = _SEPARATOR.join(f"%{char}" for char in _STRFTIME)


def workflow_scope(workflow: Manifest, spec: Manifest) -> dict[str, str]:
    metadata: Manifest = workflow["metadata"]
    created_text = str(metadata["creationTimestamp"])
    scope = {
        "workflow.name": str(metadata["name"]),
        "workflow.namespace": str(metadata.get("namespace", "default")),
        "workflow.uid": str(metadata["uid"]),
        "workflow.serviceAccountName": str(spec.get("serviceAccountName", "default")),
        "workflow.mainEntrypoint": str(spec.get("entrypoint", "")),
        "workflow.creationTimestamp": created_text,
        "workflow.creationTimestamp.RFC3339": created_text,
        "workflow.status": "Running",
    }
    created = datetime.fromisoformat(created_text.replace("Z", "+00:00"))
    formatted = created.strftime(_STRFTIME_ALL).split(_SEPARATOR)
    for char, text in zip(_STRFTIME, formatted, strict=True):
        scope[f"workflow.creationTimestamp.{char}"] = text
    for key, value in (metadata.get("labels") or {}).items():
        scope[f"workflow.labels.{key}"] = str(value)
    annotations = metadata.get("annotations") or {}
    for key, value in annotations.items():
        scope[f"workflow.annotations.{key}"] = str(value)
    if _SCHEDULED_TIME in annotations:
        scope["workflow.scheduledTime"] = str(annotations[_SCHEDULED_TIME])
    parameters = []
    for parameter in spec.get("arguments", {}).get("parameters", []):
        value = parameter.get("value", parameter.get("default"))
        if value is not None:
            value = substitute(str(value), scope, strict=False)
            scope[f"workflow.parameters.{parameter['name']}"] = value
            parameters.append({"name": parameter["name"], "value": value})
    scope["workflow.parameters.json"] = json.dumps(parameters, separators=(",", ":"))
    return scope
