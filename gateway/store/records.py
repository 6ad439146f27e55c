"""What the store's repositories return: plain dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["LogLine", "ObjectRecord", "WorkflowRecord"]


@dataclass(frozen=True)
class WorkflowRecord:
    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    manifest: dict[str, Any]  # the Workflow without `status`
    status: dict[str, Any]
    phase: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ObjectRecord:
    """A WorkflowTemplate or a CronWorkflow (`last_scheduled_at` is only set for the latter)."""

    name: str
    namespace: str
    uid: str
    manifest: dict[str, Any]
    created_at: datetime
    last_scheduled_at: datetime | None = None


@dataclass(frozen=True)
class LogLine:
    workflow_name: str
    node_id: str
    pod_name: str
    timestamp: datetime
    stream: str
    content: str
