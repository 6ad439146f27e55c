"""Low-latency workers' lines and their calls' ends in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from gateway.store import (
    Database,
    ExecutionRecord,
    ExecutionRepository,
    PipelineRepository,
    WorkerLogLine,
    WorkerLogRepository,
)
from gateway.store.records import LOW_LATENCY_TRIGGER, PipelineRecord
from gateway.store.tables import WorkerLogRow

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _databases() -> list[Any]:
    url = os.environ.get("TENDER_TEST_DATABASE_URL")
    skip = pytest.mark.skip(reason="TENDER_TEST_DATABASE_URL is not set")
    return [
        pytest.param(None, id="sqlite"),
        pytest.param(url, id="postgres", marks=[pytest.mark.postgres, *([] if url else [skip])]),
    ]


@pytest.fixture(params=_databases())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated store; on the shared PostgreSQL, names are random and removed after."""
    db = Database(request.param or f"sqlite:///{tmp_path / 'store.db'}")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def names(database: Database) -> Iterator[tuple[str, str]]:
    """A pipeline (deleted after, with its executions) and a deployment name."""
    pipeline, deployment = f"p-{secrets.token_hex(4)}", f"d-{secrets.token_hex(4)}"
    record = PipelineRecord(pipeline, {}, "ready", "local", "me", NOW, [])
    assert PipelineRepository(database).insert(record)
    yield pipeline, deployment
    PipelineRepository(database).delete(pipeline)
    with database.transaction() as session:
        session.execute(delete(WorkerLogRow).where(WorkerLogRow.pod_id == f"{deployment}-abcde"))


def _line(
    deployment: str, content: str, seconds: int, execution: str | None = None
) -> WorkerLogLine:
    return WorkerLogLine(
        deployment_name=deployment,
        pod_id=f"{deployment}-abcde",
        execution_id=execution,
        timestamp=NOW + timedelta(seconds=seconds),
        stream="stdout",
        content=content,
    )


def _execution(pipeline: str, deployment: str, execution_id: str) -> ExecutionRecord:
    return ExecutionRecord(
        id=execution_id,
        pipeline_name=pipeline,
        deployment_name=deployment,
        trigger=LOW_LATENCY_TRIGGER,
        created_by="me",
        created_at=NOW,
        status="Running",
        end_date=None,
        steps=[],
        inputs=[],
        outputs=[],
    )


def test_a_call_ends_with_its_lines_in_one_write(
    database: Database, names: tuple[str, str]
) -> None:
    pipeline, deployment = names
    logs, executions = WorkerLogRepository(database), ExecutionRepository(database)
    call = f"{deployment}-call1"
    assert executions.insert_new(_execution(pipeline, deployment, call))
    assert not executions.insert_new(_execution(pipeline, deployment, call))
    logs.append([_line(deployment, "imported", 0)])

    logs.finish_call(
        call,
        status="Succeeded",
        end_date=NOW + timedelta(seconds=2),
        steps=[{"name": "s", "status": "Succeeded"}],
        outputs=[{"pipeline_output_name": "y", "value": 1}],
        lines=[_line(deployment, "working", 1, call)],
    )

    ended = executions.get(call)
    assert ended is not None
    assert (ended.status, ended.end_date, ended.outputs[0]["value"]) == (
        "Succeeded",
        NOW + timedelta(seconds=2),
        1,
    )
    assert [line.content for line in logs.of_execution(call)] == ["working"]
    assert [line.content for line in logs.of_deployment(deployment)] == ["imported", "working"]


def test_reading_a_deployment_between_times_and_the_latest_lines(
    database: Database, names: tuple[str, str]
) -> None:
    _, deployment = names
    logs = WorkerLogRepository(database)
    logs.append([_line(deployment, f"line {n}", n) for n in range(5)])

    def read(**query: Any) -> list[str]:
        return [line.content for line in logs.of_deployment(deployment, **query)]

    assert read(limit=2) == ["line 3", "line 4"]
    assert read(since=NOW + timedelta(seconds=1), until=NOW + timedelta(seconds=3)) == [
        "line 1",
        "line 2",
        "line 3",
    ]
    assert read(since=NOW + timedelta(seconds=1), limit=1) == ["line 4"]
    assert read(limit=0) == []


def test_a_deleted_deployment_keeps_its_calls_lines_only(
    database: Database, names: tuple[str, str]
) -> None:
    _, deployment = names
    logs = WorkerLogRepository(database)
    logs.append([_line(deployment, "pod", 0), _line(deployment, "call", 1, f"{deployment}-c")])

    logs.forget_deployment(deployment)

    assert logs.of_deployment(deployment) == []
    assert [line.content for line in logs.of_execution(f"{deployment}-c")] == ["call"]
    logs.delete_execution(f"{deployment}-c")
    assert logs.of_execution(f"{deployment}-c") == []
