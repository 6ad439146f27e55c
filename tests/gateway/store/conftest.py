"""A new, empty, migrated store per test: an SQLite file, or a database of its own on the tests'
PostgreSQL server (TENDER_TEST_DATABASE_URL), dropped after."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.store import Database


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """The URL of a new database on the test server (not migrated), dropped after the test."""
    url = os.environ.get("TENDER_TEST_DATABASE_URL")
    if not url:
        pytest.skip("TENDER_TEST_DATABASE_URL is not set")
    server = make_url(url)
    name = f"tender_store_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("empty_postgres")
    db = Database(url)
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()
