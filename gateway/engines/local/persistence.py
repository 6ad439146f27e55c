"""Keeping Workflows in the store: the record of a new one, the status written at each change a
reader can see (the latest of each Workflow, many Workflows per write), and ending workflows that
a stopped engine left behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import orjson

from gateway.engines.base import Manifest
from gateway.engines.local.clock import format_status_time
from gateway.engines.local.objects import set_phase_labels
from gateway.engines.local.status import FULFILLED
from gateway.store import StoreUnavailableError
from gateway.store.records import WorkflowRecord, WorkflowStatus

__all__ = ["StatusSaver", "mark_interrupted", "status_of", "to_record"]

_log = logging.getLogger(__name__)
_RETRY_S = 1.0
_STORED_SPEC = "storedWorkflowTemplateSpec"


def to_record(
    workflow: Manifest, created_at: datetime, finished_at: datetime | None, *, copy: bool = True
) -> WorkflowRecord:
    """A snapshot: later changes to `workflow` do not reach the record. `copy=False` for a
    workflow nobody changes until the record is written (a new one, not launched yet)."""
    snapshot: Manifest = orjson.loads(orjson.dumps(workflow)) if copy else dict(workflow)
    status = snapshot.pop("status", {})
    metadata = snapshot["metadata"]
    return WorkflowRecord(
        name=metadata["name"],
        namespace=metadata.get("namespace", "default"),
        uid=metadata["uid"],
        labels=dict(metadata.get("labels") or {}),
        manifest=snapshot,
        status=status,
        phase=status.get("phase") or "Pending",
        created_at=created_at,
        finished_at=finished_at,
    )


def status_of(workflow: Manifest, finished_at: datetime | None) -> WorkflowStatus:
    """What a status write needs, from a published copy (nobody changes it later)."""
    status: Manifest = workflow["status"]
    return WorkflowStatus(
        name=workflow["metadata"]["name"],
        labels=workflow["metadata"].get("labels") or {},
        status={k: v for k, v in status.items() if k != _STORED_SPEC},
        phase=status.get("phase") or "Pending",
        finished_at=finished_at,
    )


class StatusSaver:
    """Writes the latest status of each changed Workflow: at most one write runs, holding every
    Workflow that changed since the previous one. `flush(name)` returns once the status last
    marked for `name` is in the store. A failed write is retried (the store may be restarting)."""

    def __init__(self, write: Callable[[list[WorkflowStatus]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: dict[str, WorkflowStatus] = {}
        self._writing: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._written = asyncio.Condition()

    def mark(self, status: WorkflowStatus) -> None:
        self._pending[status.name] = status
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self, name: str) -> None:
        async with self._written:
            await self._written.wait_for(
                lambda: name not in self._pending and name not in self._writing
            )

    async def _drain(self) -> None:
        while self._pending:
            batch = list(self._pending.values())
            self._pending.clear()
            self._writing = {status.name for status in batch}
            try:
                await self._write(batch)
            except Exception as exc:
                if isinstance(exc, StoreUnavailableError):  # a restart: keep the change, retry
                    _log.warning(
                        "writing the status of %d workflows waits for the store", len(batch)
                    )
                else:
                    _log.exception(
                        "writing the status of %d workflows failed; retrying", len(batch)
                    )
                for status in batch:  # a newer status marked meanwhile wins
                    self._pending.setdefault(status.name, status)
                await asyncio.sleep(_RETRY_S)
            finally:
                self._writing = set()
                async with self._written:
                    self._written.notify_all()


def mark_interrupted(workflow: Manifest, message: str, now: datetime) -> None:
    """End a workflow the engine can no longer run: unfinished nodes and the workflow in `Error`."""
    status: Manifest = workflow.setdefault("status", {})
    finished = format_status_time(now)
    for node in (status.get("nodes") or {}).values():
        if node.get("phase") not in FULFILLED:
            node.update(phase="Error", message=message, finishedAt=finished)
    status.update(phase="Error", message=message, finishedAt=finished)
    set_phase_labels(workflow, "Error")
