"""CronWorkflows: stored like any object, and fired by an in-process scheduler.

At each tick, for every CronWorkflow that is not suspended, the most recent scheduled time after
its last run (never before its creation) is due; Argo runs only the latest missed schedule, and
none that is older than `startingDeadlineSeconds`. A child is named `<cron>-<unix seconds>` and
labelled `workflows.argoproj.io/cron-workflow` (workflow/cron/operator.go). Times are in the
CronWorkflow's `timezone`, UTC when it has none (Argo would use the controller's local time).

One schedule never holds up another: a CronWorkflow whose schedule cannot be computed, or whose
child cannot be submitted, is logged once and marked with a condition in its status (Argo's
`SpecError` and `SubmissionError`), and the scheduler goes on with the others. The mark lasts
until a child is submitted or the CronWorkflow changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from gateway.engines.base import Manifest
from gateway.engines.errors import (
    CronWorkflowNotFoundError,
    ManifestInvalidError,
    ManifestRefusedError,
    ObjectExistsError,
    ObjectNotFoundError,
)
from gateway.engines.local.clock import Clock, format_time
from gateway.engines.local.objects import new_object
from gateway.engines.local.specs import apply_template_defaults
from gateway.engines.local.support import CRON_WORKFLOW, check_supported
from gateway.engines.local.validation import validate_metadata, validate_spec
from gateway.store import CronWorkflowRepository, ObjectRecord, StoreUnavailableError

__all__ = ["CRON_LABEL", "SCHEDULED_TIME_ANNOTATION", "CronCatalog"]

CRON_LABEL = "workflows.argoproj.io/cron-workflow"
SCHEDULED_TIME_ANNOTATION = "workflows.argoproj.io/scheduled-time"
_POLICIES = ("Allow", "Forbid", "Replace")
_IDLE = timedelta(minutes=1)
_RETRY = timedelta(seconds=1)
# What a schedule that cannot be computed raises: croniter's errors are ValueErrors (and a
# TypeError for some ranges), an unknown timezone a ZoneInfoNotFoundError (a KeyError).
_SPEC_ERRORS = (ValueError, TypeError, KeyError)
_log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class _Failure:
    """Why a CronWorkflow's last attempt failed, as an Argo condition type and a message."""

    kind: str  # "SpecError" or "SubmissionError"
    message: str


class _Workflows(Protocol):
    async def submit_workflow(self, manifest: Manifest) -> Manifest: ...

    async def list_workflows(self, label_selector: str = "") -> list[Manifest]: ...

    async def stop_workflow(self, name: str, message: str | None = None) -> Manifest: ...

    async def delete_workflow(self, name: str) -> None: ...

    async def run_in_store(self, function: Callable[..., T], *args: Any) -> T: ...


class CronCatalog:
    def __init__(
        self,
        repository: CronWorkflowRepository,
        workflows: _Workflows,
        clock: Clock,
        namespace: str,
    ) -> None:
        self._repository = repository
        self._workflows = workflows
        self._clock = clock
        self._namespace = namespace
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._failures: dict[str, _Failure] = {}

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task = asyncio.create_task(self._loop(), name="cron scheduler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _store(self, function: Callable[..., T], *args: Any) -> T:
        return await self._workflows.run_in_store(function, *args)

    # CRUD --------------------------------------------------------------------------------------

    async def create(self, manifest: Manifest) -> Manifest:
        _check(manifest)
        if "name" not in manifest["metadata"]:
            raise ManifestInvalidError("metadata.name", "is required")
        now = self._clock.now()
        cron = new_object(manifest, self._namespace, now)
        metadata = cron["metadata"]
        record = ObjectRecord(metadata["name"], self._namespace, metadata["uid"], cron, now)
        if not await self._store(self._repository.insert, record):
            raise ObjectExistsError("CronWorkflow", record.name)
        self._poke()
        return await self.get(record.name)

    async def update(self, manifest: Manifest) -> Manifest:
        _check(manifest)
        name = manifest["metadata"].get("name", "")
        current = await self._record(name)
        kept = {
            k: current.manifest["metadata"][k] for k in ("uid", "namespace", "creationTimestamp")
        }
        updated = {**manifest, "metadata": {**manifest["metadata"], **kept}}
        updated.pop("status", None)
        await self._store(self._repository.replace, name, updated)
        self._failures.pop(name, None)
        self._poke()
        return await self.get(name)

    async def set_suspend(self, name: str, suspend: bool) -> Manifest:
        """Schedules missed while suspended are not run on resume, as in Argo."""
        current = await self._record(name)
        updated = {**current.manifest, "spec": {**current.manifest["spec"], "suspend": suspend}}
        await self._store(self._repository.replace, name, updated)
        if not suspend:
            await self._store(self._repository.set_last_scheduled, name, self._clock.now())
        self._poke()
        return await self.get(name)

    async def get(self, name: str) -> Manifest:
        record = await self._record(name)
        return {**record.manifest, "status": await self._status(record)}

    async def delete(self, name: str) -> None:
        if not await self._store(self._repository.delete, name):
            raise CronWorkflowNotFoundError(name)
        self._failures.pop(name, None)

    async def _record(self, name: str) -> ObjectRecord:
        record = await self._store(self._repository.get, name)
        if record is None:
            raise CronWorkflowNotFoundError(name)
        return record

    async def _status(self, record: ObjectRecord) -> Manifest:
        children = await self._workflows.list_workflows(f"{CRON_LABEL}={record.name}")
        phases = [child["status"].get("phase") for child in children]
        active = [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "name": c["metadata"]["name"],
                "namespace": c["metadata"]["namespace"],
                "uid": c["metadata"]["uid"],
            }
            for c in children
            if c["status"].get("phase") in ("Pending", "Running")
        ]
        status: Manifest = {
            "active": active,
            "succeeded": phases.count("Succeeded"),
            "failed": phases.count("Failed") + phases.count("Error"),
            "phase": "Active",
            "conditions": [],
        }
        failure = self._failures.get(record.name)
        if failure is not None:
            status["conditions"] = [
                {"type": failure.kind, "status": "True", "message": failure.message}
            ]
        if record.last_scheduled_at is not None:
            status["lastScheduledTime"] = format_time(record.last_scheduled_at)
        return status

    # scheduling --------------------------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            # Nothing may end this loop but cancellation: a failed tick, or a store that is busy
            # for a moment, must not stop every schedule for good.
            try:
                await self.tick()
                wake_at = await self._next_fire_time()
            except StoreUnavailableError as exc:
                _log.warning("cron scheduler waits for the store: %s", exc)
                wake_at = self._clock.now() + _RETRY
            except Exception:
                _log.exception("cron scheduler tick failed")
                wake_at = self._clock.now() + _RETRY
            sleeper = asyncio.create_task(self._clock.sleep_until(wake_at))
            woken = asyncio.create_task(self._wake.wait())
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            sleeper.cancel()
            woken.cancel()

    async def _next_fire_time(self) -> datetime:
        now = self._clock.now()
        times = [now + _IDLE]
        for record in await self._store(self._repository.list):
            spec = record.manifest["spec"]
            for expression in spec["schedules"]:
                try:
                    zone = ZoneInfo(spec.get("timezone") or "UTC")
                    times.append(croniter(expression, now.astimezone(zone)).get_next(datetime))
                except _SPEC_ERRORS:
                    continue  # `tick` marks it; the others keep their times
        return min(times)

    async def tick(self) -> list[str]:
        """Submit every due child now; return their names. Tests call it after moving the clock."""
        assert self._lock is not None
        async with self._lock:
            now = self._clock.now()
            submitted = []
            for record in await self._store(self._repository.list):
                child = await self._tick_one(record, now)
                if child is not None:
                    submitted.append(child)
            return submitted

    async def _tick_one(self, record: ObjectRecord, now: datetime) -> str | None:
        """Fire one CronWorkflow if it is due; a failure is marked on it, never raised."""
        spec: Manifest = record.manifest["spec"]
        if spec.get("suspend"):
            return None
        try:
            due = _latest_due(spec, now, record.last_scheduled_at or record.created_at)
        except _SPEC_ERRORS as exc:
            self._fail(record.name, _Failure("SpecError", str(exc)))
            return None
        try:
            child = None if due is None else await self._fire(record, due, now)
            await self._collect_history(record)
        except Exception as exc:
            # Whatever went wrong (a refused child, a store that failed for a moment), the
            # other CronWorkflows still fire at their times; this one tries again next time.
            self._fail(record.name, _Failure("SubmissionError", f"{type(exc).__name__}: {exc}"))
            return None
        if child is not None and self._failures.pop(record.name, None) is not None:
            _log.info("CronWorkflow %s submitted %s: it works again", record.name, child)
        return child

    def _fail(self, name: str, failure: _Failure) -> None:
        """Mark the CronWorkflow; log only when the reason is new, not at every tick."""
        if self._failures.get(name) != failure:
            _log.warning("CronWorkflow %s: %s: %s", name, failure.kind, failure.message)
        self._failures[name] = failure

    async def _collect_history(self, record: ObjectRecord) -> None:
        """Delete completed children beyond `successful/failedJobsHistoryLimit`, oldest first.

        Only limits written in the manifest apply: Argo's defaults (3 and 1) are not, so that
        nothing is deleted locally unless asked.
        """
        spec: Manifest = record.manifest["spec"]
        limits = {
            "Succeeded": spec.get("successfulJobsHistoryLimit"),
            "Failed": spec.get("failedJobsHistoryLimit"),
        }
        if all(limit is None for limit in limits.values()):
            return
        children = await self._workflows.list_workflows(f"{CRON_LABEL}={record.name}")
        for phase, limit in limits.items():
            if limit is None:
                continue
            done = [c for c in children if _outcome(c) == phase]
            for child in done[int(limit) :]:
                with contextlib.suppress(ObjectNotFoundError):
                    await self._workflows.delete_workflow(child["metadata"]["name"])

    async def _fire(self, record: ObjectRecord, due: datetime, now: datetime) -> str | None:
        spec: Manifest = record.manifest["spec"]
        await self._store(self._repository.set_last_scheduled, record.name, due)
        deadline = float(spec.get("startingDeadlineSeconds") or 0)  # 0 means none, as in Argo
        if deadline > 0 and (now - due).total_seconds() > deadline:
            return None
        policy = spec.get("concurrencyPolicy", "Allow")
        selector = f"{CRON_LABEL}={record.name},workflows.argoproj.io/completed!=true"
        running = await self._workflows.list_workflows(selector) if policy != "Allow" else []
        if running and policy == "Forbid":
            return None
        for child in running:
            with contextlib.suppress(Exception):
                await self._workflows.stop_workflow(child["metadata"]["name"])
        return await self._submit_child(record, due)

    async def _submit_child(self, record: ObjectRecord, due: datetime) -> str | None:
        spec: Manifest = record.manifest["spec"]
        extra: Manifest = spec.get("workflowMetadata") or {}
        name = f"{record.name}-{int(due.timestamp())}"
        manifest: Manifest = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {
                "name": name,
                "labels": {**(extra.get("labels") or {}), CRON_LABEL: record.name},
                "annotations": {
                    **(extra.get("annotations") or {}),
                    SCHEDULED_TIME_ANNOTATION: format_time(due),
                },
            },
            "spec": spec["workflowSpec"],
        }
        try:
            await self._workflows.submit_workflow(manifest)
        except ObjectExistsError:
            return None
        return name


def _outcome(workflow: Manifest) -> str | None:
    phase = workflow.get("status", {}).get("phase")
    return "Failed" if phase == "Error" else phase


def _latest_due(spec: Manifest, now: datetime, last: datetime) -> datetime | None:
    """The most recent scheduled time in (last, now], across all schedules."""
    zone = ZoneInfo(spec.get("timezone") or "UTC")
    local_now = now.astimezone(zone) + timedelta(seconds=1)
    latest = None
    for expression in spec["schedules"]:
        try:
            previous: datetime = croniter(expression, local_now).get_prev(datetime)
        except _SPEC_ERRORS as exc:
            raise ValueError(f"schedule {expression!r} cannot be computed: {exc}") from exc
        if previous > last and previous <= now and (latest is None or previous > latest):
            latest = previous
    return latest


def _check(manifest: Manifest) -> None:
    check_supported(manifest, CRON_WORKFLOW)
    validate_metadata(manifest, "CronWorkflow", max_name=52)
    spec: Manifest = manifest["spec"]
    schedules = spec.get("schedules") or []
    if not schedules:
        raise ManifestInvalidError("spec.schedules", "must list at least one schedule")
    for index, expression in enumerate(schedules):
        if not croniter.is_valid(str(expression)):
            raise ManifestRefusedError(
                f"spec.schedules[{index}]",
                f"is not a cron expression the local engine understands: {expression!r}",
            )
    try:
        ZoneInfo(spec.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ManifestInvalidError(
            "spec.timezone", f"is not a timezone: {spec['timezone']!r}"
        ) from None
    if spec.get("concurrencyPolicy", "Allow") not in _POLICIES:
        raise ManifestInvalidError("spec.concurrencyPolicy", f"must be one of {_POLICIES}")
    if "workflowSpec" not in spec:
        raise ManifestInvalidError("spec.workflowSpec", "is required")
    if "workflowTemplateRef" not in spec["workflowSpec"]:
        validate_spec(apply_template_defaults(spec["workflowSpec"]), "spec.workflowSpec")
