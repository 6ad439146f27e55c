"""What the store's repositories return: plain dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "FINISHED_STATUSES",
    "LOW_LATENCY_TRIGGER",
    "DeploymentRecord",
    "ExecutionRecord",
    "LogLine",
    "ObjectRecord",
    "PipelineRecord",
    "StepProcess",
    "TokenInfo",
    "WorkerLogLine",
    "WorkflowRecord",
    "WorkflowStatus",
]


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
class WorkflowStatus:
    """What changes while a Workflow runs: written at each change a reader can see."""

    name: str
    labels: dict[str, str]
    status: dict[str, Any]  # without `storedWorkflowTemplateSpec`, which never changes
    phase: str
    finished_at: datetime | None


@dataclass(frozen=True)
class StepProcess:
    """A step's process group, recorded while it runs (the embedded engine)."""

    workflow_name: str
    node_id: str
    workflow_uid: str
    pgid: int
    started_at: datetime


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


@dataclass(frozen=True)
class TokenInfo:
    """An SDK token as an operator lists it: never its secret, nor its hash."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class PipelineRecord:
    name: str
    definition: dict[str, Any]  # compiler.models.Pipeline, as JSON
    status: str  # creation_pending | ready | creation_failed
    origin: str  # local | git_repository
    created_by: str
    created_at: datetime
    build_logs: list[dict[str, Any]]


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    pipeline_name: str
    deployment_name: str | None
    trigger: str  # run | endpoint | periodic | low_latency (LOW_LATENCY_TRIGGER)
    created_by: str
    created_at: datetime
    status: str
    end_date: datetime | None
    steps: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


# A call to a low-latency deployment: its state is the worker pool's (gateway.lowlatency), there
# is no Workflow behind it.
LOW_LATENCY_TRIGGER = "low_latency"

# Argo's completed phases; the SDK's EXECUTION_STATUS spells them the same way.
FINISHED_STATUSES = frozenset({"Succeeded", "Failed", "Error", "Skipped"})


@dataclass(frozen=True)
class DeploymentRecord:
    name: str
    pipeline_name: str
    execution_rule: str  # endpoint | periodic
    definition: dict[str, Any]  # compiler.models.Deployment, as JSON, without the token
    endpoint_url_path: str | None
    # Kept readable: get_deployment hands it back to any SDK-token holder (craft-api.md 5.4).
    endpoint_token: str | None
    endpoint_token_hash: str | None
    status: str  # creation_pending | up | creation_failed | disabled
    is_enabled: bool
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class WorkerLogLine:
    """A line a low-latency worker wrote; ``execution_id`` names the call that wrote it."""

    deployment_name: str
    pod_id: str
    execution_id: str | None
    timestamp: datetime
    stream: str  # stdout | stderr
    content: str
