"""ORM models of the shared store. Other packages add their tables here, with a migration each.

Types stay portable to SQLite and PostgreSQL: JSON, timezone-aware timestamps stored as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "CronWorkflowRow",
    "StepLogRow",
    "UTCDateTime",
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
    """Aware UTC datetimes on both dialects (SQLite drops the offset on its way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
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
