"""Gateways starting at once on one PostgreSQL database, as replicas of a Deployment do: the
migrations (the chart's init containers, then each gateway) and the signing key."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlalchemy import inspect, text

from gateway.store import Database, TokenRepository

pytestmark = pytest.mark.postgres  # the empty_postgres fixture skips without a server

T = TypeVar("T")
_STARTS = 4


def _at_once(url: str, start: Callable[[Database], T]) -> list[T]:
    """``start`` run by _STARTS threads, each with its own pool, released together."""
    barrier = threading.Barrier(_STARTS)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        db = Database(url)
        try:
            with db.engine.connect():
                pass  # connected before the barrier, so that the starts really overlap
            barrier.wait()
            results.append(start(db))
        except BaseException as error:  # reported below, with the others
            errors.append(error)
        finally:
            db.dispose()

    threads = [threading.Thread(target=run) for _ in range(_STARTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == _STARTS
    return results


def test_migrations_started_at_once_all_succeed(empty_postgres: str) -> None:
    _at_once(empty_postgres, lambda db: db.upgrade())
    db = Database(empty_postgres)
    try:
        assert "executions" in inspect(db.engine).get_table_names()
        with db.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        db.dispose()


def test_the_signing_key_made_at_once_is_one_key(empty_postgres: str) -> None:
    migrated = Database(empty_postgres)
    migrated.upgrade()
    migrated.dispose()
    now = datetime.now(UTC)
    keys = _at_once(
        empty_postgres, lambda db: TokenRepository(db).signing_key(secrets.token_hex, now)
    )
    assert len(set(keys)) == 1
