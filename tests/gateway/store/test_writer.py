"""The store's writer thread: several callers' writes in one transaction, errors kept apart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from gateway.store import Database, StepLogRepository
from gateway.store.records import LogLine


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.upgrade()
    yield database
    database.dispose()


def _line(n: int) -> LogLine:
    return LogLine("wf", "node", "pod", datetime.now(UTC), "stdout", f"line {n}")


def test_concurrent_writes_share_transactions(db: Database) -> None:
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _connection: commits.append(1))
    logs = StepLogRepository(db)

    async def write_all() -> None:
        await asyncio.gather(*(db.writer.run(logs.append, [_line(n)]) for n in range(50)))

    asyncio.run(write_all())
    assert sorted(line.content for line in logs.list("wf")) == sorted(
        f"line {n}" for n in range(50)
    )
    assert len(commits) < 50


def test_a_failed_write_fails_only_its_caller(db: Database) -> None:
    logs = StepLogRepository(db)

    def broken() -> None:
        logs.append([_line(-1)])
        raise ValueError("this write fails after writing")

    async def write_all() -> list[object]:
        writes = [db.writer.run(logs.append, [_line(n)]) for n in range(5)]
        return await asyncio.gather(
            *writes[:2], db.writer.run(broken), *writes[2:], return_exceptions=True
        )

    results = asyncio.run(write_all())
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["ValueError"] + [
        "NoneType"
    ] * 3
    contents = sorted(line.content for line in logs.list("wf"))
    assert contents == sorted(f"line {n}" for n in range(5))
