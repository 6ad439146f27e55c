"""Metrics that executions record: single values (the last one wins) and lists (appended).

Both belong to an execution and go with it (``ON DELETE CASCADE``); listings join the execution
for its pipeline and deployment, filter, and page (``total_count`` is exact: the SDK pages until
it has that many).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.tables import ExecutionRow, MetricListBatchRow, MetricValueRow

__all__ = ["MetricFilter", "MetricPage", "MetricRepository"]


@dataclass(frozen=True)
class MetricFilter:
    name: str | None = None
    pipeline_name: str | None = None
    deployment_name: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True)
class MetricPage:
    """Items have ``name``, ``value`` or ``values``, ``created_at`` (a datetime),
    ``execution_id``, ``deployment_name`` and ``pipeline_name``."""

    items: list[dict[str, Any]]
    total_count: int


def _conditions(found: MetricFilter, execution_id: Any, name: Any) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [ExecutionRow.id == execution_id]
    if found.name is not None:
        conditions.append(name == found.name)
    if found.execution_id is not None:
        conditions.append(execution_id == found.execution_id)
    if found.pipeline_name is not None:
        conditions.append(ExecutionRow.pipeline_name == found.pipeline_name)
    if found.deployment_name is not None:
        conditions.append(ExecutionRow.deployment_name == found.deployment_name)
    return conditions


class MetricRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put_value(self, execution_id: str, name: str, value: float, at: datetime) -> None:
        """Record ``value`` as the metric's value, replacing any earlier one."""
        for attempt in range(2):
            try:
                with self._db.transaction() as session:
                    row = session.get(MetricValueRow, (execution_id, name))
                    if row is None:
                        session.add(
                            MetricValueRow(
                                execution_id=execution_id, name=name, value=value, created_at=at
                            )
                        )
                    else:
                        row.value, row.created_at = value, at
                return
            except IntegrityError:
                if attempt:  # not a concurrent insert of the same metric: the execution is gone
                    raise

    def append_values(
        self, execution_id: str, name: str, values: Sequence[float], at: datetime
    ) -> None:
        with self._db.transaction() as session:
            session.add(
                MetricListBatchRow(
                    execution_id=execution_id, name=name, values=list(values), created_at=at
                )
            )

    def list_values(self, found: MetricFilter, page: int, per_page: int) -> MetricPage:
        row = MetricValueRow
        query = select(
            row.name,
            row.value,
            row.created_at,
            row.execution_id,
            ExecutionRow.deployment_name,
            ExecutionRow.pipeline_name,
        ).where(*_conditions(found, row.execution_id, row.name))
        ordered = (
            query.order_by(row.created_at, row.execution_id, row.name)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        with self._db.transaction() as session:
            total: int = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            items = [dict(r._mapping) for r in session.execute(ordered)]
        return MetricPage(items, total)

    def list_lists(self, found: MetricFilter, page: int, per_page: int) -> MetricPage:
        batch = MetricListBatchRow
        groups = (
            select(
                batch.execution_id,
                batch.name,
                func.min(batch.created_at).label("created_at"),
                func.min(batch.id).label("first_id"),
                ExecutionRow.deployment_name,
                ExecutionRow.pipeline_name,
            )
            .where(*_conditions(found, batch.execution_id, batch.name))
            .group_by(
                batch.execution_id,
                batch.name,
                ExecutionRow.deployment_name,
                ExecutionRow.pipeline_name,
            )
        )
        ordered = groups.order_by("first_id").offset((page - 1) * per_page).limit(per_page)
        with self._db.transaction() as session:
            total: int = session.scalar(select(func.count()).select_from(groups.subquery())) or 0
            listed = [dict(r._mapping) for r in session.execute(ordered)]
            keys = [(g["execution_id"], g["name"]) for g in listed]
            values: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
            if keys:
                batches = (
                    select(batch.execution_id, batch.name, batch.values)
                    .where(tuple_(batch.execution_id, batch.name).in_(keys))
                    .order_by(batch.id)
                )
                for execution_id, name, part in session.execute(batches):
                    values[(execution_id, name)].extend(part)
        items = [
            {
                "name": g["name"],
                "values": values[(g["execution_id"], g["name"])],
                "created_at": g["created_at"],
                "execution_id": g["execution_id"],
                "deployment_name": g["deployment_name"],
                "pipeline_name": g["pipeline_name"],
            }
            for g in listed
        ]
        return MetricPage(items, total)
