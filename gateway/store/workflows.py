"""Workflow records: the Workflow object (without status), its status, and columns to query by."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.records import WorkflowRecord, WorkflowStatus
from gateway.store.tables import StepLogRow, StepProcessRow, WorkflowRow

__all__ = ["WorkflowRepository", "WorkflowSummary"]

# Built once: constructing a statement costs more than running it on SQLite.
_INSERT = insert(WorkflowRow)

WorkflowSummary = tuple[str, dict[str, str], datetime]  # name, labels, created_at
_STORED_SPEC = "storedWorkflowTemplateSpec"
# Core, not the ORM's bulk update: a Workflow deleted meanwhile is simply not updated.
_SAVE_STATUS = (
    update(WorkflowRow)
    .where(WorkflowRow.name == bindparam("key"))
    .values(
        labels=bindparam("new_labels"),
        status=bindparam("new_status"),
        phase=bindparam("new_phase"),
        finished_at=bindparam("new_finished_at"),
    )
)


class WorkflowRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: WorkflowRecord) -> bool:
        """Store a new workflow; False if the name is taken."""
        try:
            with self._db.transaction() as session:
                session.connection().execute(_INSERT, [_row_values(record)])
        except IntegrityError:
            return False
        return True

    def save(self, record: WorkflowRecord) -> None:
        """Replace the record's labels, manifest and status (the name must exist)."""
        with self._db.transaction() as session:
            row = session.get(WorkflowRow, record.name)
            if row is None:
                return
            status, spec = _split_status(record.status)
            row.labels = record.labels
            row.manifest = record.manifest
            row.status = status
            row.phase = record.phase
            row.finished_at = record.finished_at
            if spec is not None:
                row.template_spec = spec

    def save_statuses(self, statuses: Sequence[WorkflowStatus]) -> None:
        """Write what changed while Workflows ran, all in one statement (missing names: no-op).

        A Workflow that ended has no step process left: its recorded process groups go too.
        """
        rows = [
            {
                "key": s.name,
                "new_labels": s.labels,
                "new_status": s.status,
                "new_phase": s.phase,
                "new_finished_at": s.finished_at,
            }
            for s in statuses
        ]
        ended = [s.name for s in statuses if s.finished_at is not None]
        if rows:
            with self._db.transaction() as session:
                connection = session.connection()
                connection.execute(_SAVE_STATUS, rows)
                if ended:
                    connection.execute(
                        delete(StepProcessRow).where(StepProcessRow.workflow_name.in_(ended))
                    )

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
            session.execute(delete(StepProcessRow).where(StepProcessRow.workflow_name == name))
            result = session.execute(delete(WorkflowRow).where(WorkflowRow.name == name))
            return bool(getattr(result, "rowcount", 0))


def _split_status(status: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if _STORED_SPEC not in status:
        return status, None
    return {k: v for k, v in status.items() if k != _STORED_SPEC}, status[_STORED_SPEC]


def _row_values(record: WorkflowRecord) -> dict[str, Any]:
    status, spec = _split_status(record.status)
    return {
        "name": record.name,
        "namespace": record.namespace,
        "uid": record.uid,
        "labels": record.labels,
        "manifest": record.manifest,
        "status": status,
        "phase": record.phase,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "template_spec": spec,
    }


def _to_record(row: WorkflowRow) -> WorkflowRecord:
    status: dict[str, Any] = row.status
    if row.template_spec is not None:
        status = {**status, _STORED_SPEC: row.template_spec}
    # The labels column is written with each status (phase labels); the manifest's at creation.
    manifest = {**row.manifest, "metadata": {**row.manifest["metadata"], "labels": row.labels}}
    return WorkflowRecord(
        name=row.name,
        namespace=row.namespace,
        uid=row.uid,
        labels=dict(row.labels),
        manifest=manifest,
        status=status,
        phase=row.phase,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
