"""Deployments, and the queries over executions that a deployment needs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, or_, select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.records import FINISHED_STATUSES, DeploymentRecord
from gateway.store.tables import DeploymentRow, ExecutionRow

__all__ = ["DeploymentRepository"]


class DeploymentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: DeploymentRecord) -> bool:
        """Store a new deployment; False if its name or its endpoint path is taken."""
        try:
            with self._db.transaction() as session:
                if self._taken(session, record.name, record.endpoint_url_path):
                    return False
                session.add(DeploymentRow(**record.__dict__))
        except IntegrityError:
            return False
        return True

    @staticmethod
    def _taken(session: Any, name: str, path: str | None) -> bool:
        clauses = [DeploymentRow.name == name]
        if path is not None:
            clauses.append(DeploymentRow.endpoint_url_path == path)
        return session.scalar(select(DeploymentRow.name).where(or_(*clauses)).limit(1)) is not None

    def get(self, name: str) -> DeploymentRecord | None:
        with self._db.transaction() as session:
            row = session.get(DeploymentRow, name)
            return None if row is None else _to_record(row)

    def get_by_path(self, endpoint_url_path: str) -> DeploymentRecord | None:
        """Read on every endpoint call: a Core query, a third of the ORM's cost."""
        table = DeploymentRow.__table__
        query = select(table).where(table.c.endpoint_url_path == endpoint_url_path)
        with self._db.engine.connect() as connection:
            row = connection.execute(query).first()
            return None if row is None else _to_record(row)

    def list_all(self) -> list[DeploymentRecord]:
        with self._db.transaction() as session:
            rows = session.scalars(select(DeploymentRow).order_by(DeploymentRow.created_at))
            return [_to_record(row) for row in rows]

    def names_of_pipeline(self, pipeline_name: str) -> list[str]:
        query = select(DeploymentRow.name).where(DeploymentRow.pipeline_name == pipeline_name)
        with self._db.transaction() as session:
            return list(session.scalars(query))

    def update(self, name: str, **changes: Any) -> DeploymentRecord | None:
        """Set these columns; the record as it now is, or None if there is no such deployment."""
        with self._db.transaction() as session:
            row = session.get(DeploymentRow, name)
            if row is None:
                return None
            for column, value in changes.items():
                setattr(row, column, value)
            session.flush()
            return _to_record(row)

    def delete(self, name: str) -> bool:
        with self._db.transaction() as session:
            row = session.get(DeploymentRow, name)
            if row is not None:
                session.delete(row)
            return row is not None

    def latest_execution_id(self, name: str) -> str | None:
        query = (
            select(ExecutionRow.id)
            .where(ExecutionRow.deployment_name == name)
            .order_by(ExecutionRow.created_at.desc())
            .limit(1)
        )
        with self._db.transaction() as session:
            found: str | None = session.scalar(query)
            return found

    def running_execution_id(self, name: str) -> str | None:
        """An execution of this deployment that has not ended, if there is one."""
        query = (
            select(ExecutionRow.id)
            .where(ExecutionRow.deployment_name == name)
            .where(ExecutionRow.status.not_in(FINISHED_STATUSES))
            .limit(1)
        )
        with self._db.transaction() as session:
            found: str | None = session.scalar(query)
            return found


def _to_record(row: DeploymentRow | Row[Any]) -> DeploymentRecord:
    return DeploymentRecord(
        name=row.name,
        pipeline_name=row.pipeline_name,
        execution_rule=row.execution_rule,
        definition=row.definition,
        endpoint_url_path=row.endpoint_url_path,
        endpoint_token=row.endpoint_token,
        endpoint_token_hash=row.endpoint_token_hash,
        status=row.status,
        is_enabled=row.is_enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
