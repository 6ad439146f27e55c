"""Step processes the embedded engine runs: recorded while they run, read after a crash."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from gateway.store.db import Database
from gateway.store.records import StepProcess
from gateway.store.tables import StepProcessRow

__all__ = ["StepProcessRepository"]

# Built once: constructing a statement costs more than running it on SQLite.
_INSERT = insert(StepProcessRow)


class StepProcessRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, process: StepProcess) -> None:
        with self._db.transaction() as session:
            session.connection().execute(_INSERT, [process.__dict__])

    def list(self) -> list[StepProcess]:
        with self._db.transaction() as session:
            return [
                StepProcess(
                    workflow_name=row.workflow_name,
                    node_id=row.node_id,
                    workflow_uid=row.workflow_uid,
                    pgid=row.pgid,
                    started_at=row.started_at,
                )
                for row in session.scalars(select(StepProcessRow))
            ]

    def clear(self) -> None:
        with self._db.transaction() as session:
            session.execute(delete(StepProcessRow))
