"""Keeping each execution's record in step with its Workflow, and waiting for it to end.

The engine owns an execution's state; the store keeps a copy (status, end date, steps, output
values) so that listing ten thousand executions is one query. ``refresh`` copies the engine's
state of one execution; ``watch`` refreshes every unfinished one in the background, so that
the copy is current even if nobody asks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

from compiler import Pipeline
from compiler.labels import TRIGGER_LABEL
from gateway.deployments.scheduled import scheduled_execution
from gateway.engines.errors import ObjectNotFoundError
from gateway.errors import NotFoundError
from gateway.executions import WorkflowState, workflow_state
from gateway.services import Services
from gateway.store import StoreUnavailableError
from gateway.store.records import LOW_LATENCY_TRIGGER, ExecutionRecord

__all__ = ["ExecutionTracker"]

_log = logging.getLogger("tender.tracking")
_POLL_S = 0.02
ENGINE_LOST = "the engine has no record of this execution's workflow"


class ExecutionTracker:
    def __init__(self, services: Services, *, interval_s: float = 0.5) -> None:
        self._services = services
        self._interval_s = interval_s
        self._pipelines: dict[tuple[str, datetime], Pipeline] = {}
        self._seen: set[str] = set()  # periodic Workflows that have a record

    async def get(self, execution_id: str) -> ExecutionRecord:
        """The execution's record, refreshed from the engine if it has not ended."""
        held = self._services.low_latency.record(execution_id)
        if held is not None:
            return held  # a low-latency call of this process: the record as it was stored
        record = await self._services.in_store(self._services.executions.get, execution_id)
        if record is None:
            raise NotFoundError(f"execution {execution_id!r} not found", name="ExecutionNotFound")
        return await self.refresh(record)

    async def wait(self, execution_id: str, timeout_s: float) -> ExecutionRecord:
        """The record once the execution ended, or as it is when ``timeout_s`` passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        record = await self.get(execution_id)
        if record.trigger == LOW_LATENCY_TRIGGER and not record.is_finished:
            await self._services.low_latency.wait_call(execution_id, timeout_s)
            return await self.get(execution_id)
        while not record.is_finished and loop.time() < deadline:
            await asyncio.sleep(_POLL_S)
            record = await self.refresh(record)
        return record

    async def refresh(self, record: ExecutionRecord) -> ExecutionRecord:
        # A low-latency call has no Workflow: its worker pool writes its record.
        if record.is_finished or record.trigger == LOW_LATENCY_TRIGGER:
            return record
        services = self._services
        try:
            workflow = await services.engine.get_workflow(record.id)
        except ObjectNotFoundError:
            now = datetime.now(UTC)
            state = WorkflowState("Error", now, record.steps, record.outputs, ENGINE_LOST)
        else:
            pipeline = await self._pipeline(record.pipeline_name)
            if pipeline is None:
                return record
            state = workflow_state(workflow, pipeline, record.outputs, record.created_at)
        updated = replace(
            record,
            status=state.status,
            end_date=state.end_date,
            steps=state.steps,
            outputs=state.outputs,
        )
        if updated != record:
            await services.in_store(
                services.executions.update_state,
                record.id,
                status=updated.status,
                end_date=updated.end_date,
                steps=updated.steps,
                outputs=updated.outputs,
            )
        return updated

    async def _pipeline(self, name: str) -> Pipeline | None:
        stored = await self._services.in_store(self._services.pipelines.get, name)
        if stored is None:
            return None
        cached = self._pipelines.get((name, stored.created_at))
        if cached is None:
            cached = Pipeline.model_validate(stored.definition)
            self._pipelines[(name, stored.created_at)] = cached
        return cached

    async def _record_scheduled(self) -> None:
        """Record the executions CronWorkflows started, which no request announced.

        Each look lists every periodic Workflow the engine keeps: names seen once are skipped
        without a query, so the store is asked only about new ones.
        """
        services = self._services
        for workflow in await services.engine.list_workflows(f"{TRIGGER_LABEL}=periodic"):
            name = workflow["metadata"]["name"]
            if name in self._seen:
                continue
            if await services.in_store(services.executions.get, name) is None:
                record = await scheduled_execution(services, workflow)
                if record is None:
                    continue  # its deployment is gone, or not committed yet: look again later
                await services.in_store(services.executions.insert, record)
            self._seen.add(name)

    async def watch(self) -> None:
        """Refresh every unfinished execution, every ``interval_s``, until cancelled."""
        services = self._services
        while True:
            try:
                await self._record_scheduled()
                for execution_id in await services.in_store(services.executions.unfinished_ids):
                    record = await services.in_store(services.executions.get, execution_id)
                    if record is not None:
                        await self.refresh(record)
            except StoreUnavailableError as exc:
                _log.warning("refreshing executions waits for the store: %s", exc)
            except Exception:
                # One bad record must not stop the others from being tracked.
                _log.exception("refreshing executions failed")
            await asyncio.sleep(self._interval_s)
