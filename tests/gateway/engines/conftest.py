"""Fixtures for the engine tests: a real store (SQLite file, or PostgreSQL when
TENDER_TEST_DATABASE_URL is set), LocalEngines on it, and `async def` tests run with asyncio."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gateway.engines.local import LocalEngine, LocalEngineSettings
from gateway.store import Database
from tests.gateway.engines.engine_kits import engine_kit
from tests.gateway.engines.engine_manifests import EngineFactory

__all__ = ["engine_kit"]  # the contract suites' fixture, on each engine

_ENGINE_TABLES = (
    "step_logs",
    "step_processes",
    "workflows",
    "workflow_templates",
    "cron_workflows",
)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests in a fresh event loop (pytest-asyncio is not a dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    arguments = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**arguments), timeout=60))
    return True


def _database_urls() -> list[Any]:
    postgres = os.environ.get("TENDER_TEST_DATABASE_URL")
    skip = pytest.mark.skip(reason="TENDER_TEST_DATABASE_URL is not set")
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            postgres or "",
            id="postgres",
            marks=[pytest.mark.postgres] + ([] if postgres else [skip]),
        ),
    ]


@pytest.fixture(params=_database_urls())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated store: SQLite in tmp_path, or the configured PostgreSQL, emptied around it."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.param
    db = Database(url)
    db.upgrade()
    _empty(db, request.param)
    yield db
    _empty(db, request.param)
    db.dispose()


def _empty(db: Database, kind: str) -> None:
    if kind == "sqlite":
        return
    with db.transaction() as session:
        for table in _ENGINE_TABLES:
            session.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> LocalEngineSettings:
    return LocalEngineSettings(data_dir=tmp_path / "data", kill_grace_seconds=0.5)


@pytest.fixture
def open_engine(sqlite_db: Database, settings: LocalEngineSettings) -> EngineFactory:
    """`async with open_engine(**settings_overrides, secrets=..., clock=...) as engine:`."""

    @asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[LocalEngine]:
        engine_options = {
            k: options.pop(k)
            for k in ("secrets", "clock", "resolve_interpreter", "artifacts")
            if k in options
        }
        engine = LocalEngine(sqlite_db, replace(settings, **options), **engine_options)
        await engine.start()
        try:
            yield engine
        finally:
            await engine.close()

    return factory
