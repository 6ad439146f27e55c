"""Pipelines: their definition, creation status and build logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.records import PipelineRecord
from gateway.store.tables import PipelineRow

__all__ = ["PipelineRepository"]


class PipelineRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: PipelineRecord) -> bool:
        """Store a new pipeline; False if the name is taken."""
        try:
            with self._db.transaction() as session:
                if session.get(PipelineRow, record.name) is not None:
                    return False
                session.add(PipelineRow(**record.__dict__))
        except IntegrityError:
            return False
        return True

    def get(self, name: str) -> PipelineRecord | None:
        with self._db.transaction() as session:
            row = session.get(PipelineRow, name)
            return None if row is None else _to_record(row)

    def list_all(self) -> list[PipelineRecord]:
        with self._db.transaction() as session:
            rows = session.scalars(select(PipelineRow).order_by(PipelineRow.created_at))
            return [_to_record(row) for row in rows]

    def finish_creation(
        self, name: str, status: str, build_logs: Sequence[Mapping[str, Any]]
    ) -> None:
        with self._db.transaction() as session:
            row = session.get(PipelineRow, name)
            if row is not None:
                row.status = status
                row.build_logs = [dict(line) for line in build_logs]

    def delete(self, name: str) -> bool:
        with self._db.transaction() as session:
            row = session.get(PipelineRow, name)
            if row is not None:
                session.delete(row)
            return row is not None


def _to_record(row: PipelineRow) -> PipelineRecord:
    return PipelineRecord(
        name=row.name,
        definition=row.definition,
        status=row.status,
        origin=row.origin,
        created_by=row.created_by,
        created_at=row.created_at,
        build_logs=row.build_logs,
    )
