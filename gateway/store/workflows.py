"""Workflow records: the Workflow object (without status), its status, and columns to query by."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.records import WorkflowRecord
from gateway.store.tables import StepLogRow, WorkflowRow

__all__ = ["WorkflowRepository", "WorkflowSummary"]

WorkflowSummary = tuple[str, dict[str, str], datetime]  # name, labels, created_at


class WorkflowRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: WorkflowRecord) -> bool:
        """Store a new workflow; False if the name is taken."""
        try:
            with self._db.transaction() as session:
                if session.get(WorkflowRow, record.name) is not None:
                    return False
                session.add(_to_row(record))
        except IntegrityError:
            return False
        return True

    def save(self, record: WorkflowRecord) -> None:
        """Replace the record's labels, manifest and status (the name must exist)."""
        with self._db.transaction() as session:
            row = session.get(WorkflowRow, record.name)
            if row is None:
                return
            row.labels = record.labels
            row.manifest = record.manifest
            row.status = record.status
            row.phase = record.phase
            row.finished_at = record.finished_at

    def get(self, name: str) -> WorkflowRecord | None:
        with self._db.transaction() as session:
            row = session.get(WorkflowRow, name)
            return None if row is None else _to_record(row)

    def get_many(self, names: Iterable[str]) -> list[WorkflowRecord]:
        wanted = list(names)
        with self._db.transaction() as session:
            rows = session.scalars(select(WorkflowRow).where(WorkflowRow.name.in_(wanted)))
            return [_to_record(row) for row in rows]

    def list_summaries(self) -> list[WorkflowSummary]:
        """Every workflow's name, labels and creation time, newest first."""
        query = select(WorkflowRow.name, WorkflowRow.labels, WorkflowRow.created_at).order_by(
            WorkflowRow.created_at.desc(), WorkflowRow.name
        )
        with self._db.transaction() as session:
            return [
                (name, dict(labels), created) for name, labels, created in session.execute(query)
            ]

    def list_in_phases(self, phases: Iterable[str]) -> list[WorkflowRecord]:
        query = select(WorkflowRow).where(WorkflowRow.phase.in_(list(phases)))
        with self._db.transaction() as session:
            return [
                _to_record(row) for row in session.scalars(query.order_by(WorkflowRow.created_at))
            ]

    def delete(self, name: str) -> bool:
        """Delete the workflow and its step logs; False if it did not exist."""
        with self._db.transaction() as session:
            session.execute(delete(StepLogRow).where(StepLogRow.workflow_name == name))
            result = session.execute(delete(WorkflowRow).where(WorkflowRow.name == name))
            return bool(getattr(result, "rowcount", 0))


def _to_row(record: WorkflowRecord) -> WorkflowRow:
    return WorkflowRow(
        name=record.name,
        namespace=record.namespace,
        uid=record.uid,
        labels=record.labels,
        manifest=record.manifest,
        status=record.status,
        phase=record.phase,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


def _to_record(row: WorkflowRow) -> WorkflowRecord:
    status: dict[str, Any] = row.status
    return WorkflowRecord(
        name=row.name,
        namespace=row.namespace,
        uid=row.uid,
        labels=dict(row.labels),
        manifest=row.manifest,
        status=status,
        phase=row.phase,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
