"""Executions: who started them and with what, and a copy of their state for fast listing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, cast, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database, date_text
from gateway.store.records import FINISHED_STATUSES, ExecutionRecord
from gateway.store.tables import ExecutionRow

__all__ = ["ExecutionRepository"]


def _summary_columns(dialect: str) -> tuple[Any, ...]:
    """The listing's columns, dates already written as the SDK reads them, steps as raw JSON."""
    return (
        ExecutionRow.id,
        ExecutionRow.status,
        date_text(ExecutionRow.created_at, dialect),
        ExecutionRow.created_by,
        date_text(ExecutionRow.end_date, dialect),
        ExecutionRow.pipeline_name,
        ExecutionRow.deployment_name,
        # A cast in SQL: psycopg decodes json columns itself, whatever SQLAlchemy's type says.
        cast(ExecutionRow.steps, Text),
    )


class ExecutionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: ExecutionRecord) -> None:
        """One per endpoint call: a Core insert, a quarter of the ORM's cost."""
        with self._db.engine.begin() as connection:
            connection.execute(insert(ExecutionRow), [record.__dict__])

    def insert_new(self, record: ExecutionRecord) -> bool:
        """Store an execution whose id the gateway made up; False if that id is taken."""
        try:
            self.insert(record)
        except IntegrityError:
            return False
        return True

    def get(self, execution_id: str) -> ExecutionRecord | None:
        with self._db.transaction() as session:
            row = session.get(ExecutionRow, execution_id)
            return None if row is None else _to_record(row)

    def update_state(
        self,
        execution_id: str,
        *,
        status: str,
        end_date: datetime | None,
        steps: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> None:
        # One UPDATE: an execution deleted meanwhile is no error (nothing left to update).
        changes = {"status": status, "end_date": end_date, "steps": steps, "outputs": outputs}
        with self._db.transaction() as session:
            session.execute(
                update(ExecutionRow).where(ExecutionRow.id == execution_id).values(**changes)
            )

    def list_summaries(self, pipeline_name: str) -> list[dict[str, Any]]:
        """The SDK's ``list_pipeline_executions`` items, newest first, straight from the columns.

        The database formats the dates and the steps stay the JSON text they are stored as
        (an ``orjson.Fragment``): ten thousand rows cost little more than the query itself.
        """
        query = (
            select(*_summary_columns(self._db.engine.dialect.name))
            .where(ExecutionRow.pipeline_name == pipeline_name)
            .order_by(ExecutionRow.created_at.desc(), ExecutionRow.id)
        )
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        return [
            {
                "execution_id": row[0],
                "status": row[1],
                "created_at": row[2],
                "created_by": row[3],
                "end_date": row[4],
                "pipeline_name": row[5],
                "deployment_name": row[6],
                "steps": orjson.Fragment(row[7]),
            }
            for row in rows
        ]

    def latest_id(self, pipeline_name: str) -> str | None:
        query = (
            select(ExecutionRow.id)
            .where(ExecutionRow.pipeline_name == pipeline_name)
            .order_by(ExecutionRow.created_at.desc())
            .limit(1)
        )
        with self._db.transaction() as session:
            found: str | None = session.scalar(query)
            return found

    def unfinished_ids(self) -> list[str]:
        query = select(ExecutionRow.id).where(ExecutionRow.status.not_in(FINISHED_STATUSES))
        with self._db.transaction() as session:
            return list(session.scalars(query))

    def ids_of_pipeline(self, pipeline_name: str) -> list[str]:
        query = select(ExecutionRow.id).where(ExecutionRow.pipeline_name == pipeline_name)
        with self._db.transaction() as session:
            return list(session.scalars(query))

    def delete(self, execution_id: str) -> bool:
        with self._db.transaction() as session:
            row = session.get(ExecutionRow, execution_id)
            if row is not None:
                session.delete(row)
            return row is not None


def _to_record(row: ExecutionRow) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id,
        pipeline_name=row.pipeline_name,
        deployment_name=row.deployment_name,
        trigger=row.trigger,
        created_by=row.created_by,
        created_at=row.created_at,
        status=row.status,
        end_date=row.end_date,
        steps=row.steps,
        inputs=row.inputs,
        outputs=row.outputs,
    )
