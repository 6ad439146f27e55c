"""Execution records as several gateways write them: a schedule's run is recorded once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.store import Database, ExecutionRepository, PipelineRepository
from gateway.store.records import ExecutionRecord, PipelineRecord

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _record(execution_id: str, created_by: str) -> ExecutionRecord:
    return ExecutionRecord(
        id=execution_id,
        pipeline_name="p",
        deployment_name="nightly",
        trigger="periodic",
        created_by=created_by,
        created_at=NOW,
        status="Pending",
        end_date=None,
        steps=[],
        inputs=[],
        outputs=[],
    )


def test_insert_once_records_the_first_and_keeps_it(store: Database) -> None:
    PipelineRepository(store).insert(
        PipelineRecord("p", {}, "ready", "local", "someone", NOW, build_logs=[])
    )
    executions = ExecutionRepository(store)
    first = _record("nightly-1796001029", "gateway-a")

    assert executions.insert_once(first) is True
    assert executions.insert_once(replace(first, created_by="gateway-b")) is False

    assert executions.get(first.id) == first
    assert executions.insert_once(_record("nightly-1796001031", "gateway-b")) is True
