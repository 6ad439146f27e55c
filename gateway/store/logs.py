"""Step log lines, appended in batches when a step's process ends."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select

from gateway.store.db import Database
from gateway.store.records import LogLine
from gateway.store.tables import StepLogRow

__all__ = ["StepLogRepository"]

# Built once: constructing a statement costs more than running it on SQLite.
_INSERT = insert(StepLogRow)


class StepLogRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        rows = [
            {
                "workflow_name": line.workflow_name,
                "node_id": line.node_id,
                "pod_name": line.pod_name,
                "timestamp": line.timestamp,
                "stream": line.stream,
                "content": line.content,
            }
            for line in lines
        ]
        with self._db.transaction() as session:
            session.connection().execute(_INSERT, rows)

    def list(self, workflow_name: str) -> list[LogLine]:
        """A workflow's lines in the order they were written."""
        query = (
            select(StepLogRow)
            .where(StepLogRow.workflow_name == workflow_name)
            .order_by(StepLogRow.id)
        )
        with self._db.transaction() as session:
            return [
                LogLine(
                    workflow_name=row.workflow_name,
                    node_id=row.node_id,
                    pod_name=row.pod_name,
                    timestamp=row.timestamp,
                    stream=row.stream,
                    content=row.content,
                )
                for row in session.scalars(query)
            ]
