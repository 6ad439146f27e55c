"""Open the store's database from a URL and bring its schema up to date.

SQLite (the embedded default) runs in WAL mode with a busy timeout, so readers never block the
single writer; PostgreSQL is reached through psycopg 3. SQLAlchemy is used synchronously: async
callers go through `asyncio.to_thread` (aiosqlite/asyncpg are not dependencies).

A database that cannot be reached (PostgreSQL restarting, SQLite busy past its timeout) raises
`StoreUnavailableError`, which callers may retry; PostgreSQL connections are checked before use
(`pool_pre_ping`), so that a restarted server is reconnected to without a failed request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, Engine, create_engine, event, func, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.store.errors import StoreUnavailableError
from gateway.store.writer import StoreWriter

__all__ = ["Database", "StoreUnavailableError", "create_db_engine", "date_text"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock key that migrations hold (any constant that no other lock uses).
_MIGRATION_LOCK = 0x74656E646572  # "tender"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(url: str) -> Engine:
    """An SQLAlchemy engine for `url`; `postgresql://` URLs get the psycopg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    is_sqlite = parsed.get_backend_name() == "sqlite"
    engine = create_engine(
        parsed,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=not is_sqlite,
    )
    if is_sqlite:
        event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def date_text(column: Any, dialect: str) -> ColumnElement[str]:
    """A timestamp column as the SDK's date text (``2026-01-01T10:00:00.000Z``), made by the
    database, which is several times faster than making it in Python for a long listing."""
    if dialect == "sqlite":
        # Stored as naive UTC text (tables.UTCDateTime); %f is seconds with milliseconds.
        return func.strftime("%Y-%m-%dT%H:%M:%fZ", column)
    return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')


class Database:
    """The store's connection pool; `transaction()` is one unit of work (commit or rollback).

    `writer` runs the hot writes on one thread, several per transaction (`writer.py`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local = threading.local()

    @cached_property
    def writer(self) -> StoreWriter:
        return StoreWriter(self)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A new transaction, or the current batch's when the writer runs this call."""
        shared: Session | None = getattr(self._local, "batch", None)
        if shared is not None:
            yield shared
            return
        with _reachable(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Until the block ends, `transaction()` on this thread joins one transaction."""
        with _reachable(), self._sessions.begin() as session:
            self._local.batch = session
            try:
                yield
            finally:
                self._local.batch = None

    def upgrade(self, revision: str = "heads") -> None:
        """Run the Alembic migrations up to `revision` with a Config built here (no alembic.ini)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas (and their init containers) starting at once would each create the
                # tables; the transaction-scoped lock makes them take turns, and the later ones
                # find the schema current. (SQLite serves one gateway: the chart refuses more.)
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def dispose(self) -> None:
        if "writer" in self.__dict__:
            self.writer.close()
        self.engine.dispose()


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        # Connection-level errors (DBAPI's OperationalError, InterfaceError): a server gone or
        # restarting, a database locked past the timeout; not a bad statement.
        raise StoreUnavailableError(
            f"the store's database cannot be reached: {type(exc.orig).__name__}"
        ) from exc
