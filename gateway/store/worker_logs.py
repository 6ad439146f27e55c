"""The lines low-latency workers write: each pod's log, and the log of each call they serve.

A line is stored once: ``get_deployment_logs`` reads a deployment's lines, an execution's log is
the lines tagged with its id. A call's end is one transaction: its state and the lines written
so far, so that whoever sees the execution ended also sees all of its lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from gateway.store.db import Database
from gateway.store.records import WorkerLogLine
from gateway.store.tables import ExecutionRow, WorkerLogRow

__all__ = ["WorkerLogRepository"]


class WorkerLogRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, lines: Sequence[WorkerLogLine]) -> None:
        if lines:
            with self._db.engine.begin() as connection:
                connection.execute(insert(WorkerLogRow), [_row(line) for line in lines])

    def finish_call(
        self,
        execution_id: str,
        *,
        status: str,
        end_date: datetime,
        steps: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        lines: Sequence[WorkerLogLine],
    ) -> None:
        with self._db.engine.begin() as connection:  # Core: once per call, on the hot path
            if lines:
                connection.execute(insert(WorkerLogRow), [_row(line) for line in lines])
            connection.execute(
                update(ExecutionRow)
                .where(ExecutionRow.id == execution_id)
                .values(status=status, end_date=end_date, steps=steps, outputs=outputs)
            )

    def of_deployment(
        self,
        deployment_name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[WorkerLogLine]:
        """Its lines in the order they were written; ``limit`` keeps the latest ones."""
        query = select(WorkerLogRow).where(WorkerLogRow.deployment_name == deployment_name)
        if since is not None:
            query = query.where(WorkerLogRow.timestamp >= since)
        if until is not None:
            query = query.where(WorkerLogRow.timestamp <= until)
        query = query.order_by(WorkerLogRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._db.transaction() as session:
            return [_line(row) for row in reversed(session.scalars(query).all())]

    def of_execution(self, execution_id: str) -> list[WorkerLogLine]:
        query = (
            select(WorkerLogRow)
            .where(WorkerLogRow.execution_id == execution_id)
            .order_by(WorkerLogRow.id)
        )
        with self._db.transaction() as session:
            return [_line(row) for row in session.scalars(query)]

    def forget_deployment(self, deployment_name: str) -> None:
        """Drop the pods' own lines; the lines of calls stay, as their executions' logs."""
        mine = WorkerLogRow.deployment_name == deployment_name
        with self._db.transaction() as session:
            session.execute(delete(WorkerLogRow).where(mine, WorkerLogRow.execution_id.is_(None)))
            session.execute(update(WorkerLogRow).where(mine).values(deployment_name=None))

    def delete_execution(self, execution_id: str) -> None:
        with self._db.transaction() as session:
            session.execute(delete(WorkerLogRow).where(WorkerLogRow.execution_id == execution_id))


def _row(line: WorkerLogLine) -> dict[str, Any]:
    return {
        "deployment_name": line.deployment_name,
        "pod_id": line.pod_id,
        "execution_id": line.execution_id,
        "timestamp": line.timestamp,
        "stream": line.stream,
        "content": line.content,
    }


def _line(row: WorkerLogRow) -> WorkerLogLine:
    return WorkerLogLine(
        deployment_name=row.deployment_name or "",
        pod_id=row.pod_id,
        execution_id=row.execution_id,
        timestamp=row.timestamp,
        stream=row.stream,
        content=row.content,
    )
