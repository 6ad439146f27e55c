"""WorkflowTemplate and CronWorkflow records: named manifests, plus a cron's last scheduled time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.store.db import Database
from gateway.store.records import ObjectRecord
from gateway.store.tables import CronWorkflowRow, WorkflowTemplateRow

__all__ = ["CronWorkflowRepository", "WorkflowTemplateRepository"]

_Row = WorkflowTemplateRow | CronWorkflowRow


class _ObjectRepository:
    _table: type[WorkflowTemplateRow] | type[CronWorkflowRow]

    def __init__(self, db: Database) -> None:
        self._db = db

    def _get(self, session: Session, name: str) -> _Row | None:
        return cast(_Row | None, session.get(self._table, name))

    def insert(self, record: ObjectRecord) -> bool:
        """Store a new object; False if the name is taken."""
        now = datetime.now(UTC)
        try:
            with self._db.transaction() as session:
                if session.get(self._table, record.name) is not None:
                    return False
                row = self._table(
                    name=record.name,
                    namespace=record.namespace,
                    uid=record.uid,
                    manifest=record.manifest,
                    created_at=record.created_at,
                    updated_at=now,
                )
                if isinstance(row, CronWorkflowRow):
                    row.last_scheduled_at = record.last_scheduled_at
                session.add(row)
        except IntegrityError:
            return False
        return True

    def replace(self, name: str, manifest: dict[str, object]) -> bool:
        """Replace the manifest of an existing object; False if it does not exist."""
        with self._db.transaction() as session:
            row = self._get(session, name)
            if row is None:
                return False
            row.manifest = dict(manifest)
            row.updated_at = datetime.now(UTC)
            return True

    def get(self, name: str) -> ObjectRecord | None:
        with self._db.transaction() as session:
            row = self._get(session, name)
            return None if row is None else _to_record(row)

    def list(self) -> list[ObjectRecord]:
        with self._db.transaction() as session:
            rows = session.scalars(select(self._table).order_by(self._table.name))
            return [_to_record(cast(_Row, row)) for row in rows]

    def delete(self, name: str) -> bool:
        with self._db.transaction() as session:
            result = session.execute(delete(self._table).where(self._table.name == name))
            return bool(getattr(result, "rowcount", 0))


class WorkflowTemplateRepository(_ObjectRepository):
    _table = WorkflowTemplateRow


class CronWorkflowRepository(_ObjectRepository):
    _table = CronWorkflowRow

    def set_last_scheduled(self, name: str, when: datetime) -> None:
        with self._db.transaction() as session:
            row = session.get(CronWorkflowRow, name)
            if row is not None:
                row.last_scheduled_at = when


def _to_record(row: _Row) -> ObjectRecord:
    last = row.last_scheduled_at if isinstance(row, CronWorkflowRow) else None
    return ObjectRecord(
        name=row.name,
        namespace=row.namespace,
        uid=row.uid,
        manifest=dict(row.manifest),
        created_at=row.created_at,
        last_scheduled_at=last,
    )
