"""Keeping a running Workflow's state in the store: coalesced saves through one writer, and
ending workflows that a stopped engine left behind."""

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
from gateway.store.records import WorkflowRecord

__all__ = ["Saver", "mark_interrupted", "to_record"]

_log = logging.getLogger(__name__)
_RETRY_S = 0.5


def to_record(
    workflow: Manifest, created_at: datetime, finished_at: datetime | None
) -> WorkflowRecord:
    """A snapshot: later changes to `workflow` do not reach the record."""
    snapshot: Manifest = orjson.loads(orjson.dumps(workflow))
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


class Saver:
    """Coalesces change notifications: at most one save runs, and one more follows if needed."""

    def __init__(self, save: Callable[[], Awaitable[None]]) -> None:
        self._save = save
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    def mark(self) -> None:
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self._save()
            except StoreUnavailableError as exc:
                # The database is away for a moment (a restart): keep the change, try again.
                _log.warning("saving a workflow failed, retrying: %s", exc)
                self._dirty = True
                await asyncio.sleep(_RETRY_S)

    async def flush(self) -> None:
        self.mark()
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


def mark_interrupted(workflow: Manifest, message: str, now: datetime) -> None:
    """End a workflow the engine can no longer run: unfinished nodes and the workflow in `Error`."""
    status: Manifest = workflow.setdefault("status", {})
    finished = format_status_time(now)
    for node in (status.get("nodes") or {}).values():
        if node.get("phase") not in FULFILLED:
            node.update(phase="Error", message=message, finishedAt=finished)
    status.update(phase="Error", message=message, finishedAt=finished)
    set_phase_labels(workflow, "Error")
