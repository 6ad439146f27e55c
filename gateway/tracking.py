"""Keeping each execution's record in step with its Workflow: one watch per engine, no polling.

The engine owns an execution's state; the store keeps a copy (status, end date, steps, output
values) so that listing ten thousand executions is one query. The tracker lists the engine's
unfinished Workflows, reconciles the store with them, then follows the engine's watch from the
listing's version (docs/ARCHITECTURE.md, "How the gateway learns about state"). Each event
updates the execution's record when what a reader sees changed (many records per write), records
the executions CronWorkflows start, and wakes whoever waits for that execution.

Records are written with a guard (an ended execution is never written again), so that several
gateways following the same engine can all write the same change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from compiler import Pipeline
from compiler.labels import PIPELINE_LABEL, TRIGGER_LABEL
from gateway.dates import parse_argo_time
from gateway.deployments.scheduled import scheduled_execution
from gateway.engines.base import Manifest, WatchEvent
from gateway.engines.errors import (
    EngineError,
    EngineUnavailableError,
    ObjectNotFoundError,
    WatchExpiredError,
)
from gateway.errors import NotFoundError
from gateway.execution_secrets import provide_secret, withdraw_secret
from gateway.executions import WorkflowState, workflow_state
from gateway.missing_variables import waiting_for_a_variable
from gateway.services import Services
from gateway.store import StoreUnavailableError
from gateway.store.records import FINISHED_STATUSES, LOW_LATENCY_TRIGGER, ExecutionRecord

__all__ = ["ENGINE_LOST", "WORKFLOW_DELETED", "ExecutionTracker"]

_log = logging.getLogger("tender.tracking")
ENGINE_LOST = "the engine has no record of this execution's workflow"
WORKFLOW_DELETED = "the execution's workflow was deleted"
_WATCHED = PIPELINE_LABEL
# The reconciliation needs only what may still change: an ended Workflow is fetched by name
# when the store still thinks its execution runs (it ended while no gateway was watching).
_UNFINISHED = f"{PIPELINE_LABEL},workflows.argoproj.io/completed!=true"
_EARLY_LIMIT = 10_000
_STOP_TIMEOUT_S = 10.0


@dataclass
class _Tracked:
    record: ExecutionRecord
    pipeline: Pipeline | None  # None when the pipeline is gone: only the status is followed


class ExecutionTracker:
    def __init__(
        self, services: Services, *, retry_s: float = 0.5, max_retry_s: float = 30.0
    ) -> None:
        self._services = services
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._open: dict[str, _Tracked] = {}
        # The latest state of Workflows whose execution is not recorded yet (the request that
        # submitted it has not written its record): applied by `track`.
        self._early: OrderedDict[str, Manifest] = OrderedDict()
        self._expected: OrderedDict[str, None] = OrderedDict()  # submitted, not recorded yet
        self._pipelines: dict[tuple[str, datetime], Pipeline] = {}
        self._pending: dict[str, ExecutionRecord] = {}
        self._writer: asyncio.Task[None] | None = None
        self._waiters: dict[str, set[asyncio.Future[ExecutionRecord]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Ended Workflows whose Secret went (the latest ones: forgetting one costs a 404).
        self._secrets_removed: OrderedDict[str, None] = OrderedDict()
        self._stopped: OrderedDict[str, None] = OrderedDict()  # stopped for a missing variable

    # lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tracker")

    async def stop(self) -> None:
        """Once the engine is closed: apply what its watch still delivers, write it, stop."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), _STOP_TIMEOUT_S)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await self._flush()

    # what requests call ------------------------------------------------------------------------

    def expect(self, name: str) -> None:
        self._expected[name] = None
        while len(self._expected) > _EARLY_LIMIT:
            self._expected.popitem(last=False)

    def track(self, record: ExecutionRecord, pipeline: Pipeline) -> None:
        """Follow an execution a request has just recorded (its Workflow may have moved on)."""
        self._expected.pop(record.id, None)
        if record.is_finished or record.id in self._open:
            return
        tracked = _Tracked(record, pipeline)
        self._open[record.id] = tracked
        workflow = self._early.pop(record.id, None)
        if workflow is not None:
            self._update(tracked, self._state(tracked, workflow))

    async def get(self, execution_id: str) -> ExecutionRecord:
        services = self._services
        held = services.low_latency.record(execution_id)
        if held is not None:
            return held  # a low-latency call of this process: the record as it was stored
        record = await services.in_store(services.executions.get, execution_id)
        if record is None:
            raise NotFoundError(f"execution {execution_id!r} not found", name="ExecutionNotFound")
        return record

    async def wait(self, execution_id: str, timeout_s: float) -> ExecutionRecord:
        """The record once the execution ended, or as it is when ``timeout_s`` passed."""
        future: asyncio.Future[ExecutionRecord] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(execution_id, set())
        waiters.add(future)  # before reading: an end written meanwhile still wakes us
        try:
            record = await self.get(execution_id)
            if record.is_finished or timeout_s <= 0:
                return record
            if record.trigger == LOW_LATENCY_TRIGGER:  # no Workflow: its worker pool ends it
                await self._services.low_latency.wait_call(execution_id, timeout_s)
                return await self.get(execution_id)
            if execution_id not in self._open:  # recorded by another gateway
                await self._adopt(record)
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                tracked = self._open.get(execution_id)
                return tracked.record if tracked is not None else record
        finally:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(execution_id, None)

    # the watch ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_s
        while not self._stopping.is_set():
            try:
                version = await self._reconcile()
                delay = self._retry_s
                async for event in self._services.engine.watch_workflows(_WATCHED, version):
                    await self._apply(event)
            except WatchExpiredError:
                _log.info("the engine's watch expired: listing again")
                continue
            except Exception as exc:
                if self._stopping.is_set():
                    break
                if isinstance(exc, StoreUnavailableError):
                    _log.warning("following the engine waits for the store: %s", exc)
                elif isinstance(exc, EngineUnavailableError):  # expected, and says why: no trace
                    _log.warning(
                        "the engine is unavailable (%s); listing again in %.1f s", exc, delay
                    )
                else:
                    _log.exception("following the engine failed; listing again in %.1f s", delay)
                await self._pause(delay)
                delay = min(delay * 2, self._max_retry_s)
            else:
                if not self._stopping.is_set():
                    await self._pause(self._retry_s)  # the engine ended the watch: list again

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _reconcile(self) -> str:
        """Bring every unfinished record up to date with the engine; return where to watch from."""
        services = self._services
        listing = await services.engine.snapshot_workflows(_UNFINISHED)
        running = {w["metadata"]["name"]: w for w in listing["items"]}
        for stored in await services.in_store(services.executions.unfinished):
            if stored.trigger == LOW_LATENCY_TRIGGER:
                continue  # no Workflow: its worker pool ends it (gateway/lowlatency)
            tracked = self._open.get(stored.id) or await self._adopt(stored)
            workflow = running.pop(stored.id, None)
            if workflow is None:
                try:
                    workflow = await services.engine.get_workflow(stored.id)
                except ObjectNotFoundError:
                    self._update(tracked, _lost(tracked.record, ENGINE_LOST))
                    continue
            self._keep_secret("ADDED", workflow)  # one whose creation failed, or left behind
            self._stop_if_blocked(workflow)
            self._update(tracked, self._state(tracked, workflow))
        for workflow in running.values():  # executions not recorded yet, or CronWorkflows'
            await self._apply(WatchEvent(type="ADDED", object=workflow))
        return listing["resource_version"]

    async def _apply(self, event: WatchEvent) -> None:
        workflow = event["object"]
        metadata = workflow["metadata"]
        labels = metadata.get("labels") or {}
        if PIPELINE_LABEL not in labels:
            return
        name = metadata["name"]
        self._keep_secret(event["type"], workflow)
        if event["type"] != "DELETED":
            self._stop_if_blocked(workflow)
        if name in self._expected and name not in self._open:
            if event["type"] != "DELETED":
                self._remember_early(name, workflow)
            return
        tracked = self._open.get(name) or await self._find(name, workflow, event["type"])
        if tracked is None:
            return
        if event["type"] == "DELETED":
            self._update(tracked, _lost(tracked.record, WORKFLOW_DELETED))
        else:
            self._update(tracked, self._state(tracked, workflow))

    def _keep_secret(self, event_type: str, workflow: Manifest) -> None:
        """Each execution's Secret (``gateway.execution_secrets``) exists while its Workflow
        runs: created when the Workflow first shows (a CronWorkflow's, or one a request's own
        creation missed), removed once it ended."""
        services, name = self._services, workflow["metadata"]["name"]
        ended = (workflow.get("status") or {}).get("phase") in FINISHED_STATUSES
        if event_type == "DELETED":
            self._secrets_removed.pop(name, None)
        elif ended and name not in self._secrets_removed:
            self._secrets_removed[name] = None
            while len(self._secrets_removed) > _EARLY_LIMIT:
                self._secrets_removed.popitem(last=False)
            services.spawn(withdraw_secret(services.execution_secrets, workflow))
        elif event_type == "ADDED" and not ended:
            services.spawn(provide_secret(services.execution_secrets, workflow))

    def _stop_if_blocked(self, workflow: Manifest) -> None:
        """A Workflow whose pod waits for an environment variable that does not exist is
        stopped with the engine's message for it (``gateway.missing_variables``)."""
        name = workflow["metadata"]["name"]
        if name in self._stopped or (message := waiting_for_a_variable(workflow)) is None:
            return
        self._stopped[name] = None
        while len(self._stopped) > _EARLY_LIMIT:
            self._stopped.popitem(last=False)
        self._services.spawn(self._stop(name, message))

    async def _stop(self, name: str, message: str) -> None:
        try:
            await self._services.engine.stop_workflow(name, message)
        except EngineError as exc:  # ended or gone meanwhile, or out of reach: the watch says
            _log.warning("stopping %s, which waits for a missing variable: %s", name, exc)

    async def _find(self, name: str, workflow: Manifest, event_type: str) -> _Tracked | None:
        """The execution of a Workflow this gateway does not follow yet, from the store; a
        CronWorkflow's child gets its record here."""
        services = self._services
        record = await services.in_store(services.executions.get, name)
        if name in self._open:  # a request recorded it meanwhile
            return self._open[name]
        if record is None:
            if event_type == "DELETED":
                self._early.pop(name, None)
                return None
            if (workflow["metadata"].get("labels") or {}).get(TRIGGER_LABEL) == "periodic":
                record = await scheduled_execution(services, workflow)
                # Replicas watch the same Workflows: the first to record a schedule's run
                # records it, the others read that record.
                if record is not None and not await services.db.writer.run(
                    services.executions.insert_once, record
                ):
                    record = await services.in_store(services.executions.get, name)
            if record is None:
                self._remember_early(name, workflow)
                return None
        if record.is_finished:
            return None
        return await self._adopt(record)

    async def _adopt(self, record: ExecutionRecord) -> _Tracked:
        pipeline = await self._pipeline(record.pipeline_name)
        tracked = self._open.get(record.id)
        if tracked is None:
            tracked = self._open[record.id] = _Tracked(record, pipeline)
            if (workflow := self._early.pop(record.id, None)) is not None:
                self._update(tracked, self._state(tracked, workflow))
        return tracked

    def _remember_early(self, name: str, workflow: Manifest) -> None:
        self._early[name] = workflow
        self._early.move_to_end(name)
        while len(self._early) > _EARLY_LIMIT:
            self._early.popitem(last=False)

    async def _pipeline(self, name: str) -> Pipeline | None:
        stored = await self._services.in_store(self._services.pipelines.get, name)
        if stored is None:
            return None
        cached = self._pipelines.get((name, stored.created_at))
        if cached is None:
            cached = Pipeline.model_validate(stored.definition)
            self._pipelines[(name, stored.created_at)] = cached
        return cached

    # states and writes -------------------------------------------------------------------------

    def _state(self, tracked: _Tracked, workflow: Manifest) -> WorkflowState:
        record = tracked.record
        if tracked.pipeline is not None:
            return workflow_state(workflow, tracked.pipeline, record.outputs, record.created_at)
        status = workflow.get("status") or {}
        phase = status.get("phase") or "Pending"
        end = parse_argo_time(status.get("finishedAt"))
        return WorkflowState(phase, end, record.steps, record.outputs, status.get("message"))

    def _update(self, tracked: _Tracked, state: WorkflowState) -> None:
        record = tracked.record
        if record.is_finished:
            return
        # Argo's times have whole seconds: an execution may seem to end before it started.
        end_date = state.end_date and max(state.end_date, record.created_at)
        updated = replace(
            record, status=state.status, end_date=end_date, steps=state.steps, outputs=state.outputs
        )
        if updated == record:
            return
        tracked.record = updated
        self._pending[updated.id] = updated
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        """Write every changed record in one statement; then wake the waiters of those that
        ended. A failed write is retried: the store may be restarting."""
        services = self._services
        delay = self._retry_s
        while self._pending:
            batch = list(self._pending.values())
            self._pending.clear()
            try:
                await services.db.writer.run(services.executions.update_states, batch)
            except Exception as exc:
                if isinstance(exc, StoreUnavailableError):
                    _log.warning("writing %d execution records waits for the store", len(batch))
                else:
                    _log.exception("writing %d execution records failed; retrying", len(batch))
                for record in batch:
                    self._pending.setdefault(record.id, record)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_s)
                continue
            for record in batch:
                if record.is_finished:
                    self._ended(record)

    def _ended(self, record: ExecutionRecord) -> None:
        tracked = self._open.get(record.id)
        if tracked is not None and tracked.record is record:
            del self._open[record.id]
        for waiter in self._waiters.get(record.id, ()):
            if not waiter.done():
                waiter.set_result(record)

    async def _flush(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


def _lost(record: ExecutionRecord, message: str) -> WorkflowState:
    """The record keeps no message: it is logged, for whoever wonders why."""
    _log.warning("execution %s ended in Error: %s", record.id, message)
    return WorkflowState("Error", datetime.now(UTC), record.steps, record.outputs, message)
