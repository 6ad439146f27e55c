"""Samples of what tender's executions used, per worker and interval (resource metrics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, select

from gateway.store.db import Database
from gateway.store.tables import ResourceSampleRow

__all__ = ["ResourceSample", "ResourceSampleRepository"]


@dataclass(frozen=True)
class ResourceSample:
    worker: str
    taken_at: datetime
    cpu_usage: float
    ram_usage: float
    disk_usage: float
    network_input: float
    network_output: float
    total_ram: int
    total_disk: int


class ResourceSampleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, sample: ResourceSample) -> None:
        with self._db.transaction() as session:
            session.add(ResourceSampleRow(**asdict(sample)))

    def between(self, start: datetime, end: datetime) -> list[ResourceSample]:
        """The samples taken from ``start`` to ``end`` (both included), oldest first."""
        query = (
            select(ResourceSampleRow)
            .where(ResourceSampleRow.taken_at >= start, ResourceSampleRow.taken_at <= end)
            .order_by(ResourceSampleRow.taken_at, ResourceSampleRow.id)
        )
        with self._db.transaction() as session:
            return [
                ResourceSample(
                    worker=row.worker,
                    taken_at=row.taken_at,
                    cpu_usage=row.cpu_usage,
                    ram_usage=row.ram_usage,
                    disk_usage=row.disk_usage,
                    network_input=row.network_input,
                    network_output=row.network_output,
                    total_ram=row.total_ram,
                    total_disk=row.total_disk,
                )
                for row in session.scalars(query)
            ]

    def prune(self, before: datetime) -> None:
        with self._db.transaction() as session:
            session.execute(delete(ResourceSampleRow).where(ResourceSampleRow.taken_at < before))
