"""Environment variables: names and values, set several at once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.tables import EnvironmentVariableRow

__all__ = ["EnvironmentVariableRepository"]


class EnvironmentVariableRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, variables: Mapping[str, str], now: datetime) -> None:
        """Create or update every variable given, in one transaction."""
        try:
            self._put(variables, now)
        except IntegrityError:  # a concurrent put created one of them first: now it updates
            self._put(variables, now)

    def _put(self, variables: Mapping[str, str], now: datetime) -> None:
        with self._db.transaction() as session:
            for name, value in variables.items():
                row = session.get(EnvironmentVariableRow, name)
                if row is None:
                    row = EnvironmentVariableRow(
                        name=name, value=value, created_at=now, updated_at=now
                    )
                    session.add(row)
                else:
                    row.value, row.updated_at = value, now

    def get(self, name: str) -> str | None:
        with self._db.transaction() as session:
            row = session.get(EnvironmentVariableRow, name)
            return None if row is None else row.value

    def all(self) -> dict[str, str]:
        """Every variable, by name in order."""
        with self._db.transaction() as session:
            rows = session.execute(
                select(EnvironmentVariableRow.name, EnvironmentVariableRow.value).order_by(
                    EnvironmentVariableRow.name
                )
            )
            return {row.name: row.value for row in rows}

    def names(self) -> list[str]:
        with self._db.transaction() as session:
            return list(
                session.scalars(
                    select(EnvironmentVariableRow.name).order_by(EnvironmentVariableRow.name)
                )
            )

    def delete(self, name: str) -> str | None:
        """The value the variable had, or None if there was none."""
        with self._db.transaction() as session:
            row = session.get(EnvironmentVariableRow, name)
            if row is None:
                return None
            session.delete(row)
            return row.value
