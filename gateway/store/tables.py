"""ORM models of the shared store. Other packages add their tables here, with a migration each.

Types stay portable to SQLite and PostgreSQL: JSON, timezone-aware timestamps stored as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiTokenRow",
    "Base",
    "CronWorkflowRow",
    "DeploymentRow",
    "EnvironmentVariableRow",
    "ExecutionRow",
    "MetricListBatchRow",
    "MetricValueRow",
    "PipelineRow",
    "ResourceSampleRow",
    "SigningKeyRow",
    "StepLogRow",
    "StepProcessRow",
    "UTCDateTime",
    "WorkerLogRow",
    "WorkflowRow",
    "WorkflowTemplateRow",
]

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite drops the offset on its way back), kept to
    the millisecond: the platform's dates have milliseconds, and a date written by Python
    (which truncates) and one written by the database (SQLite's ``%f`` rounds) then agree."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class WorkflowRow(Base):
    __tablename__ = "workflows"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    labels: Mapped[dict[str, Any]]
    manifest: Mapped[dict[str, Any]]
    status: Mapped[dict[str, Any]]
    phase: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    # status.storedWorkflowTemplateSpec: written once, out of the status written at each change.
    template_spec: Mapped[dict[str, Any] | None]


class StepProcessRow(Base):
    """A running step's process group (the embedded engine), so that a restart can kill it."""

    __tablename__ = "step_processes"

    workflow_name: Mapped[str] = mapped_column(String(253), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(253), primary_key=True)
    workflow_uid: Mapped[str] = mapped_column(String(36))
    pgid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]


class WorkflowTemplateRow(Base):
    __tablename__ = "workflow_templates"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    manifest: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CronWorkflowRow(Base):
    __tablename__ = "cron_workflows"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    manifest: Mapped[dict[str, Any]]
    last_scheduled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StepLogRow(Base):
    __tablename__ = "step_logs"
    __table_args__ = (Index("ix_step_logs_workflow_name_id", "workflow_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_name: Mapped[str] = mapped_column(String(253))
    node_id: Mapped[str] = mapped_column(String(253))
    pod_name: Mapped[str] = mapped_column(String(253))
    timestamp: Mapped[datetime]
    stream: Mapped[str] = mapped_column(String(6))
    content: Mapped[str] = mapped_column(Text)


class ApiTokenRow(Base):
    """An SDK token: only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class SigningKeyRow(Base):
    """The key access tokens are signed with: kept, so that a restart logs nobody out."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class PipelineRow(Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    definition: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    build_logs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class ExecutionRow(Base):
    """What the engine does not keep about an execution, and a copy of its state for listing."""

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_pipeline_name_created_at", "pipeline_name", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(253), primary_key=True)
    pipeline_name: Mapped[str] = mapped_column(
        String(63), ForeignKey("pipelines.name", ondelete="CASCADE")
    )
    deployment_name: Mapped[str | None] = mapped_column(String(63))
    trigger: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), index=True)
    end_date: Mapped[datetime | None]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class EnvironmentVariableRow(Base):
    """A variable every execution sees. The value is kept as given (see
    ``gateway.environment_variables`` for why it is not encrypted here)."""

    __tablename__ = "environment_variables"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeploymentRow(Base):
    """A deployment: its definition and the state the engine's object does not hold."""

    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    pipeline_name: Mapped[str] = mapped_column(
        String(63), ForeignKey("pipelines.name", ondelete="CASCADE"), index=True
    )
    execution_rule: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]]
    endpoint_url_path: Mapped[str | None] = mapped_column(String(63), unique=True)
    endpoint_token: Mapped[str | None] = mapped_column(String(256))
    endpoint_token_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    is_enabled: Mapped[bool]
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class MetricValueRow(Base):
    """A single-value metric: the last value recorded for an execution and a name."""

    __tablename__ = "metric_values"

    execution_id: Mapped[str] = mapped_column(
        String(253), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]


class MetricListBatchRow(Base):
    """One appended batch of a list metric (the SDK sends up to 10,000 values at a time):
    the list is its batches' values in ``id`` order."""

    __tablename__ = "metric_list_batches"
    __table_args__ = (
        Index("ix_metric_list_batches_execution_id_name_id", "execution_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(253), ForeignKey("executions.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))
    values: Mapped[list[float]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class ResourceSampleRow(Base):
    """What tender's executions used on one worker during one sampling interval."""

    __tablename__ = "resource_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker: Mapped[str] = mapped_column(String(253))
    taken_at: Mapped[datetime] = mapped_column(index=True)
    cpu_usage: Mapped[float] = mapped_column(Float)  # percent of all the worker's cores
    ram_usage: Mapped[float] = mapped_column(Float)  # percent of the worker's memory
    disk_usage: Mapped[float] = mapped_column(Float)  # percent of the data dir's file system
    network_input: Mapped[float] = mapped_column(Float)  # bytes received in the interval
    network_output: Mapped[float] = mapped_column(Float)  # bytes sent in the interval
    total_ram: Mapped[int] = mapped_column(BigInteger)
    total_disk: Mapped[int] = mapped_column(BigInteger)


class WorkerLogRow(Base):
    """A line a low-latency worker wrote: the pod's log, and its call's execution log when
    ``execution_id`` is set. ``deployment_name`` is null once the deployment is deleted."""

    __tablename__ = "worker_logs"
    __table_args__ = (
        Index("ix_worker_logs_deployment_name_id", "deployment_name", "id"),
        Index("ix_worker_logs_execution_id_id", "execution_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_name: Mapped[str | None] = mapped_column(String(63))
    pod_id: Mapped[str] = mapped_column(String(253))
    execution_id: Mapped[str | None] = mapped_column(String(253))
    timestamp: Mapped[datetime]
    stream: Mapped[str] = mapped_column(String(6))
    content: Mapped[str] = mapped_column(Text)
