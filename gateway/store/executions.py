"""Executions: who started them and with what, and a copy of their state for fast listing."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Insert, Text, bindparam, cast, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database, date_text
from gateway.store.records import FINISHED_STATUSES, ExecutionRecord
from gateway.store.tables import ExecutionRow

__all__ = ["ExecutionRepository"]

# Built once: constructing a statement costs more than running it on SQLite.
_INSERT = insert(ExecutionRow)
# Several gateways may write the same change (each follows the engine's watch): one that lags
# behind must never turn an ended execution back into a running one.
_UPDATE_STATE = (
    update(ExecutionRow)
    .where(ExecutionRow.id == bindparam("key"))
    # Not `not_in`: its expanding parameter cannot go with executemany.
    .where(*(ExecutionRow.status != status for status in sorted(FINISHED_STATUSES)))
    .values(
        status=bindparam("new_status"),
        end_date=bindparam("new_end_date"),
        steps=bindparam("new_steps"),
        outputs=bindparam("new_outputs"),
    )
)


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


def _insert_once(dialect: str) -> Insert:
    """An INSERT that does nothing when the id is recorded already: SQLite and PostgreSQL both
    say ON CONFLICT DO NOTHING, each through its own SQLAlchemy construct."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(ExecutionRow).on_conflict_do_nothing(index_elements=[ExecutionRow.id])


class ExecutionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: ExecutionRecord) -> None:
        """One per endpoint call: a Core insert, a quarter of the ORM's cost (in the writer's
        batch when the store writer runs it)."""
        with self._db.transaction() as session:
            session.connection().execute(_INSERT, [record.__dict__])

    def insert_new(self, record: ExecutionRecord) -> bool:
        """Store an execution whose id the gateway made up; False if that id is taken."""
        try:
            self.insert(record)
        except IntegrityError:
            return False
        return True

    def insert_once(self, record: ExecutionRecord) -> bool:
        """Record an execution unless it is recorded already (by another gateway following the
        same Workflows); whether this call recorded it."""
        with self._db.transaction() as session:
            statement = _insert_once(self._db.engine.dialect.name).values(**record.__dict__)
            return session.scalar(statement.returning(ExecutionRow.id)) is not None

    def get(self, execution_id: str) -> ExecutionRecord | None:
        with self._db.transaction() as session:
            row = session.get(ExecutionRow, execution_id)
            return None if row is None else _to_record(row)

    def update_states(self, records: list[ExecutionRecord]) -> None:
        """Write the state (status, end date, steps, outputs) of each record, in one statement;
        an execution that already ended in the store is left as it is, and one deleted
        meanwhile is no error (nothing left to update)."""
        rows = [
            {
                "key": r.id,
                "new_status": r.status,
                "new_end_date": r.end_date,
                "new_steps": r.steps,
                "new_outputs": r.outputs,
            }
            for r in records
        ]
        if rows:
            with self._db.transaction() as session:
                session.connection().execute(_UPDATE_STATE, rows)

    def unfinished(self) -> list[ExecutionRecord]:
        query = select(ExecutionRow).where(ExecutionRow.status.not_in(FINISHED_STATUSES))
        with self._db.transaction() as session:
            return [_to_record(row) for row in session.scalars(query)]

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
