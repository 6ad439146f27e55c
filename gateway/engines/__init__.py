"""Engines run Argo manifests: `ArgoEngine` on a cluster, `LocalEngine` (`gateway.engines.local`)
on this machine. Both implement the `Engine` protocol and raise the errors of `errors.py`."""

from __future__ import annotations

from gateway.engines.base import Engine, LogEntry, Manifest, WatchEvent, WorkflowList
from gateway.engines.errors import (
    CronWorkflowNotFoundError,
    EngineError,
    EngineUnavailableError,
    InvalidLabelSelectorError,
    ManifestError,
    ManifestInvalidError,
    ManifestRefusedError,
    ObjectExistsError,
    ObjectNotFoundError,
    WatchExpiredError,
    WorkflowNotFoundError,
    WorkflowStateError,
    WorkflowTemplateNotFoundError,
)
from gateway.engines.label_selector import LabelSelector, parse_label_selector

__all__ = [
    "CronWorkflowNotFoundError",
    "Engine",
    "EngineError",
    "EngineUnavailableError",
    "InvalidLabelSelectorError",
    "LabelSelector",
    "LogEntry",
    "Manifest",
    "ManifestError",
    "ManifestInvalidError",
    "ManifestRefusedError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "WatchEvent",
    "WatchExpiredError",
    "WorkflowList",
    "WorkflowNotFoundError",
    "WorkflowStateError",
    "WorkflowTemplateNotFoundError",
    "parse_label_selector",
]
