"""The execution tracker on the real services (store, embedded engine): list, reconcile, watch.

Workflows are submitted to the engine directly, with tender's labels, so that each test can
choose when the execution's record is written relative to its Workflow's changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from compiler import Pipeline
from compiler.labels import PIPELINE_LABEL, TRIGGER_LABEL
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.store import ExecutionRecord, PipelineRecord
from gateway.tracking import ExecutionTracker

T = TypeVar("T")
PIPELINE = Pipeline.model_validate(
    {"pipeline_name": "p", "function_path": "src/p.py", "function_name": "p"}
)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@contextlib.asynccontextmanager
async def _services(data_dir: Path) -> AsyncIterator[Services]:
    async with open_services(Settings(data_dir=data_dir)) as services:
        record = PipelineRecord(
            "p", PIPELINE.model_dump(mode="json"), "ready", "local", "u", datetime.now(UTC), []
        )
        await services.in_store(services.pipelines.insert, record)
        yield services


@contextlib.asynccontextmanager
async def _tracked(services: Services) -> AsyncIterator[ExecutionTracker]:
    tracker = ExecutionTracker(services)
    services.follower = tracker
    tracker.start()
    try:
        yield tracker
    finally:
        await services.close_engine()
        await tracker.stop()


@contextlib.asynccontextmanager
async def _reopened(data_dir: Path) -> AsyncIterator[Services]:
    """The services again, on the same data dir (the pipeline is already stored)."""
    async with open_services(Settings(data_dir=data_dir)) as services:
        yield services


def _manifest(name: str, script: str = "echo hi") -> dict[str, Any]:
    """A Workflow shaped like a compiled one-step pipeline: a DAG task named after the step."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": {PIPELINE_LABEL: "p", TRIGGER_LABEL: "run"}},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": [{"name": "p", "template": "work"}]}},
                {"name": "work", "container": {"image": "x", "command": ["sh", "-c", script]}},
            ],
        },
    }


def _record(name: str) -> ExecutionRecord:
    return ExecutionRecord(
        id=name,
        pipeline_name="p",
        deployment_name=None,
        trigger="run",
        created_by="u",
        created_at=datetime.now(UTC).replace(microsecond=0),  # the store keeps milliseconds
        status="Pending",
        end_date=None,
        steps=[],
        inputs=[],
        outputs=[],
    )


def test_an_execution_recorded_after_its_workflow_ended_is_brought_up_to_date(
    tmp_path: Path,
) -> None:
    async def scenario() -> ExecutionRecord:
        async with _services(tmp_path) as services, _tracked(services) as tracker:
            await services.engine.submit_workflow(_manifest("late"))
            services.expect_execution("late")
            await services.engine.wait_for_workflow("late")
            await asyncio.sleep(0.1)  # its last events reach the tracker before the record
            await services.record_execution(_record("late"), PIPELINE)
            return await tracker.wait("late", timeout_s=30)

    ended = _run(scenario())
    assert ended.status == "Succeeded"
    assert ended.end_date is not None
    assert [(s["name"], s["status"]) for s in ended.steps] == [("p", "Succeeded")]


def test_a_waiter_is_woken_when_the_execution_ends(tmp_path: Path) -> None:
    async def scenario() -> tuple[ExecutionRecord, ExecutionRecord | None]:
        async with _services(tmp_path) as services, _tracked(services) as tracker:
            await services.engine.submit_workflow(_manifest("awaited", "sleep 0.5"))
            services.expect_execution("awaited")
            await services.record_execution(_record("awaited"), PIPELINE)
            ended = await tracker.wait("awaited", timeout_s=30)
            stored = await services.in_store(services.executions.get, "awaited")
            return ended, stored

    ended, stored = _run(scenario())
    assert ended.status == "Succeeded"
    assert stored == ended, "the waiter was woken before the record was written"


def test_on_start_records_are_reconciled_with_the_engine(tmp_path: Path) -> None:
    """Records left unfinished by a stopped gateway: one Workflow ended meanwhile, one is gone."""

    async def before() -> None:
        async with _services(tmp_path) as services:
            await services.engine.submit_workflow(_manifest("ended-meanwhile"))
            await services.engine.wait_for_workflow("ended-meanwhile")
            for name in ("ended-meanwhile", "never-submitted"):
                await services.record_execution(_record(name), PIPELINE)

    async def after() -> dict[str, str]:
        async with _reopened(tmp_path) as services, _tracked(services) as tracker:
            return {
                name: (await tracker.wait(name, timeout_s=30)).status
                for name in ("ended-meanwhile", "never-submitted")
            }

    _run(before())
    assert _run(after()) == {"ended-meanwhile": "Succeeded", "never-submitted": "Error"}


def test_an_ended_execution_is_never_written_back_to_running(tmp_path: Path) -> None:
    """Two gateways follow the same engine: the one that lags must not undo the other's end."""

    async def scenario() -> ExecutionRecord | None:
        async with _services(tmp_path) as services:
            record = _record("shared")
            await services.record_execution(record, PIPELINE)
            done = replace(record, status="Succeeded", end_date=datetime.now(UTC))
            write = services.db.writer.run
            await write(services.executions.update_states, [done])
            await write(services.executions.update_states, [replace(record, status="Running")])
            return await services.in_store(services.executions.get, "shared")

    stored = _run(scenario())
    assert stored is not None
    assert stored.status == "Succeeded"
