"""The Workflows this engine is running: their tasks, the slots they wait for, and how each change
becomes one event for watchers and one status write.

A running Workflow's status lives in memory and changes in place. Changes are gathered for a
moment (`COALESCE_S`) and published together: one resource version, one watch event, and the
Workflow's status marked for the next batched write. A Workflow that ends is published at once,
and leaves the running set only once its final status is in the store, so that a reader finds it
in one place or the other.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime

import orjson

from gateway.engines.base import Manifest
from gateway.engines.local.clock import Clock, format_status_time
from gateway.engines.local.context import EngineServices, WorkflowRun
from gateway.engines.local.events import EventLog, EventType
from gateway.engines.local.objects import set_phase_labels
from gateway.engines.local.persistence import StatusSaver, mark_interrupted, status_of
from gateway.engines.local.settings import LocalEngineSettings
from gateway.engines.local.variables import workflow_scope
from gateway.engines.local.workflow import run_workflow

__all__ = ["CLOSED_MESSAGE", "COALESCE_S", "RunningWorkflows", "published_copy"]

_log = logging.getLogger("gateway.engines.local")
CLOSED_MESSAGE = "the local engine was shut down while the workflow was running"
# How long changes of running Workflows are gathered before they are published together: a
# step's start is several changes (node added, Pending, Running) a few hundred microseconds apart.
COALESCE_S = 0.002
_STORED_SPEC = "storedWorkflowTemplateSpec"
_ENDED = ("Succeeded", "Failed", "Error")


@dataclass
class _Active:
    run: WorkflowRun
    created_at: datetime
    task: asyncio.Task[None] | None = None
    settled: asyncio.Future[None] | None = None  # its last status written, once it ended


class RunningWorkflows:
    def __init__(
        self,
        settings: LocalEngineSettings,
        clock: Clock,
        events: EventLog,
        saver: StatusSaver,
        services: EngineServices,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._events = events
        self._saver = saver
        self._services = services
        self._active: dict[str, _Active] = {}
        self._dirty: dict[str, _Active] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._slots = asyncio.Semaphore(settings.max_workflows)

    def get(self, name: str) -> WorkflowRun | None:
        active = self._active.get(name)
        return None if active is None else active.run

    def names(self) -> list[str]:
        return list(self._active)

    def published(self, name: str) -> Manifest | None:
        """A copy of the running Workflow's current state, or None if it is not running."""
        active = self._active.get(name)
        return None if active is None else published_copy(active.run.workflow)

    def launch(self, workflow: Manifest, spec: Manifest, created_at: datetime) -> WorkflowRun:
        holder: list[_Active] = []
        run = WorkflowRun(workflow, spec, self._services, lambda: self._changed(holder[0]))
        run.scope = workflow_scope(workflow, spec)
        active = _Active(run, created_at)
        holder.append(active)
        self._active[run.name] = active
        active.task = asyncio.create_task(self._drive(active), name=f"workflow {run.name}")
        return run

    def publish_new(self, workflow: Manifest) -> None:
        self._events.publish("ADDED", published_copy(workflow))

    def publish_deleted(self, workflow: Manifest) -> None:
        self._events.publish("DELETED", published_copy(workflow))

    async def wait(self, name: str) -> None:
        active = self._active.get(name)
        if active is not None and active.task is not None:
            await asyncio.wait({active.task})

    async def cancel(self, name: str) -> None:
        """Kill the Workflow's steps and wait until it is gone from the running set."""
        active = self._active.get(name)
        if active is not None and active.task is not None:
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
            # A workflow that had just ended may still be writing its last status: a delete
            # that follows must come after that write, not be undone by it.
            if active.settled is not None:
                await asyncio.gather(active.settled, return_exceptions=True)

    async def close(self) -> None:
        """Kill every running step; running workflows end in `Error`, pending ones stay queued."""
        tasks = [a.task for a in self._active.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._publish_dirty()

    # changes -----------------------------------------------------------------------------------

    def _changed(self, active: _Active) -> None:
        self._dirty[active.run.name] = active
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(COALESCE_S, self._publish_dirty)

    def _publish_dirty(self) -> None:
        self._timer = None
        dirty, self._dirty = self._dirty, {}
        for active in dirty.values():
            self._publish(active)

    def _publish(self, active: _Active, event_type: EventType = "MODIFIED") -> None:
        self._dirty.pop(active.run.name, None)
        copy = published_copy(active.run.workflow)
        self._events.publish(event_type, copy)
        finished = self._clock.now() if copy["status"].get("finishedAt") else None
        self._saver.mark(status_of(copy, finished))

    # one workflow, start to end ----------------------------------------------------------------

    async def _drive(self, active: _Active) -> None:
        run = active.run
        try:
            if await self._wait_for_slot(run):
                try:
                    await self._execute(run)
                finally:
                    self._slots.release()
            else:
                self._finish(run, "Failed", run.stop_message)
        except asyncio.CancelledError:
            if run.status["phase"] == "Running":
                mark_interrupted(run.workflow, CLOSED_MESSAGE, self._clock.now())
            raise
        finally:
            active.settled = asyncio.ensure_future(self._settle(active))
            await asyncio.shield(active.settled)

    async def _wait_for_slot(self, run: WorkflowRun) -> bool:
        """Wait `Pending` for a workflow slot; False if the workflow was stopped meanwhile."""
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        acquire = asyncio.create_task(self._slots.acquire())
        stopped = asyncio.create_task(run.stop.wait())
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not acquire.done():
            acquire.cancel()
            return False
        if run.stop.is_set():
            self._slots.release()
            return False
        return True

    async def _execute(self, run: WorkflowRun) -> None:
        run.status["phase"] = "Running"
        run.status["startedAt"] = format_status_time(self._clock.now())
        set_phase_labels(run.workflow, "Running")
        run.on_change()
        try:
            phase, message = await run_workflow(run)
        except Exception as exc:  # the workflow must end; the traceback goes to the log
            _log.exception("workflow %s failed inside the local engine", run.name)
            phase, message = "Error", f"local engine error: {exc}"
        self._finish(run, phase, message)

    def _finish(self, run: WorkflowRun, phase: str, message: str | None) -> None:
        run.status["phase"] = phase
        run.status["finishedAt"] = format_status_time(self._clock.now())
        if run.status.get("startedAt") is None:
            run.status["startedAt"] = run.status["finishedAt"]
        if message:
            run.status["message"] = message
        set_phase_labels(run.workflow, phase)

    async def _settle(self, active: _Active) -> None:
        name = active.run.name
        if active.run.status["phase"] in _ENDED:
            self._publish(active)
            await self._saver.flush(name)
            self._active.pop(name, None)
            if not self._settings.keep_work_dirs:
                await asyncio.to_thread(shutil.rmtree, self._settings.work_dir / name, True)
        elif self._active.get(name) is active:
            self._dirty.pop(name, None)
            self._active.pop(name, None)  # cancelled while pending: stays queued in the store


def published_copy(workflow: Manifest) -> Manifest:
    """What watchers and readers get: metadata and status copied, the spec and the stored
    template spec (which never change once submitted) shared."""
    status: Manifest = workflow.get("status") or {}
    stored = status.get(_STORED_SPEC)
    changing = {k: v for k, v in status.items() if k != _STORED_SPEC}
    metadata, copied_status = orjson.loads(orjson.dumps([workflow["metadata"], changing]))
    if stored is not None:
        copied_status[_STORED_SPEC] = stored
    return {**workflow, "metadata": metadata, "status": copied_status}
