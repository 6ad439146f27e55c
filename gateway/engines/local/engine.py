"""LocalEngine: the Engine protocol on local processes, with state in the gateway's store.

Create it with the store's `Database` and settings, `await start()` it (recovers what a previous
process left, starts the cron scheduler), and `await close()` it (kills running steps; their
workflows end in `Error`). Store calls run in a thread, one writer at a time.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from gateway.engines.base import LogEntry, Manifest
from gateway.engines.errors import (
    EngineUnavailableError,
    ManifestInvalidError,
    ObjectExistsError,
    WorkflowNotFoundError,
    WorkflowStateError,
    WorkflowTemplateNotFoundError,
)
from gateway.engines.label_selector import parse_label_selector
from gateway.engines.local.artifacts import ArtifactRepository
from gateway.engines.local.clock import Clock, SystemClock, format_log_time, format_status_time
from gateway.engines.local.context import EngineServices, WorkflowRun
from gateway.engines.local.objects import generate_name, new_object, set_phase_labels
from gateway.engines.local.persistence import Saver, mark_interrupted, to_record
from gateway.engines.local.scheduler.cron import CronCatalog
from gateway.engines.local.settings import (
    InterpreterResolver,
    LocalEngineSettings,
    SecretLookup,
    resolve_default_interpreter,
)
from gateway.engines.local.specs import apply_template_defaults, merge_template_spec
from gateway.engines.local.support import WORKFLOW, WORKFLOW_TEMPLATE, check_supported
from gateway.engines.local.validation import validate_metadata, validate_spec
from gateway.engines.local.variables import workflow_scope
from gateway.engines.local.workflow import run_workflow, stop_message
from gateway.storage import LocalStorage, Storage
from gateway.store import (
    CronWorkflowRepository,
    Database,
    LogLine,
    ObjectRecord,
    StepLogRepository,
    WorkflowRepository,
    WorkflowTemplateRepository,
)

__all__ = ["LocalEngine"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
RESTARTED_MESSAGE = "the local engine restarted while the workflow was running"
CLOSED_MESSAGE = "the local engine was shut down while the workflow was running"
_TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"


@dataclass
class _Active:
    run: WorkflowRun
    saver: Saver
    created_at: datetime
    task: asyncio.Task[None] | None = None


class LocalEngine:
    def __init__(
        self,
        db: Database,
        settings: LocalEngineSettings,
        *,
        secrets: SecretLookup | None = None,
        resolve_interpreter: InterpreterResolver = resolve_default_interpreter,
        clock: Clock | None = None,
        artifacts: Storage | None = None,
    ) -> None:
        """`artifacts` is the artifact repository (default: a folder, `artifacts_root`)."""
        self.settings = settings
        self._artifacts = ArtifactRepository(artifacts or LocalStorage(settings.artifacts_root))
        self.clock: Clock = clock or SystemClock()
        self._workflows = WorkflowRepository(db)
        self._templates = WorkflowTemplateRepository(db)
        self._logs = StepLogRepository(db)
        self._secrets = secrets
        self._resolve_interpreter = resolve_interpreter
        self._active: dict[str, _Active] = {}
        self._writer: asyncio.Lock | None = None
        self._services: EngineServices | None = None
        self._slots: asyncio.Semaphore | None = None
        self.crons = CronCatalog(CronWorkflowRepository(db), self, self.clock, settings.namespace)

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what a previous process left behind and start the cron scheduler."""
        self._writer = asyncio.Lock()
        self._slots = asyncio.Semaphore(self.settings.max_workflows)
        self._services = EngineServices(
            settings=self.settings,
            clock=self.clock,
            secrets=self._secrets,
            resolve_interpreter=self._resolve_interpreter,
            processes=asyncio.Semaphore(self.settings.max_processes),
            save_logs=self._save_logs,
            artifacts=self._artifacts,
        )
        await asyncio.to_thread(self.settings.work_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self.settings.artifacts_root.mkdir, parents=True, exist_ok=True)
        await self._recover()
        self.crons.start()

    async def close(self) -> None:
        """Kill every running step; running workflows end in `Error`, pending ones stay queued."""
        await self.crons.close()
        for active in list(self._active.values()):
            if active.task is not None:
                active.task.cancel()
        for active in list(self._active.values()):
            if active.task is not None:
                await asyncio.gather(active.task, return_exceptions=True)
        self._services = None

    async def __aenter__(self) -> LocalEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _recover(self) -> None:
        now = self.clock.now()
        for record in await self._db(self._workflows.list_in_phases, ["Running", "Pending"]):
            workflow = {**record.manifest, "status": record.status}
            if record.phase == "Running":
                mark_interrupted(workflow, RESTARTED_MESSAGE, now)
                await self._db(self._workflows.save, to_record(workflow, record.created_at, now))
            else:
                spec = await self._effective_spec(workflow)
                self._launch(workflow, spec, record.created_at)

    # workflows ---------------------------------------------------------------------------------

    async def submit_workflow(self, manifest: Manifest) -> Manifest:
        check_supported(manifest, WORKFLOW)
        validate_metadata(manifest, "Workflow")
        now = self.clock.now()
        workflow = new_object(manifest, self.settings.namespace, now)
        spec = await self._effective_spec(workflow)
        validate_spec(spec, "spec")
        _apply_workflow_metadata(workflow, spec)
        workflow["status"] = {
            "phase": "Pending",
            "startedAt": None,
            "finishedAt": None,
            "progress": "0/0",
            "nodes": {},
        }
        if "workflowTemplateRef" in workflow["spec"]:
            workflow["status"]["storedWorkflowTemplateSpec"] = spec
        set_phase_labels(workflow, "Pending")
        await self._insert(workflow, now)
        active = self._launch(workflow, spec, now)
        return _copy(active.run.workflow)

    async def _insert(self, workflow: Manifest, now: datetime) -> None:
        metadata = workflow["metadata"]
        explicit = "name" in metadata
        for _ in range(10):
            if not explicit:
                metadata["name"] = generate_name(metadata["generateName"])
            if await self._db(self._workflows.insert, to_record(workflow, now, None)):
                return
            if explicit:
                raise ObjectExistsError("Workflow", metadata["name"])
        raise ObjectExistsError("Workflow", metadata["name"])

    async def _effective_spec(self, workflow: Manifest) -> Manifest:
        spec: Manifest = workflow["spec"]
        stored = workflow.get("status", {}).get("storedWorkflowTemplateSpec")
        if stored is not None:
            return apply_template_defaults(stored)
        if "workflowTemplateRef" in spec:
            name = spec["workflowTemplateRef"].get("name", "")
            record = await self._db(self._templates.get, name)
            if record is None:
                raise WorkflowTemplateNotFoundError(name)
            spec = merge_template_spec(record.manifest["spec"], spec)
        return apply_template_defaults(spec)

    def _launch(self, workflow: Manifest, spec: Manifest, created_at: datetime) -> _Active:
        if self._services is None:
            raise EngineUnavailableError("the local engine is not started")
        holder: list[_Active] = []
        saver = Saver(lambda: self._save(holder[0]))
        run = WorkflowRun(workflow, spec, self._services, saver.mark)
        run.scope = workflow_scope(workflow, spec)
        active = _Active(run, saver, created_at)
        holder.append(active)
        self._active[run.name] = active
        active.task = asyncio.create_task(self._drive(active), name=f"workflow {run.name}")
        return active

    async def _drive(self, active: _Active) -> None:
        run = active.run
        assert self._slots is not None
        try:
            if await self._wait_for_slot(run):
                try:
                    await self._execute(active)
                finally:
                    self._slots.release()
            else:
                self._finish(run, "Failed", run.stop_message)
        except asyncio.CancelledError:
            if run.status["phase"] == "Running":
                mark_interrupted(run.workflow, CLOSED_MESSAGE, self.clock.now())
            raise
        finally:
            await asyncio.shield(self._settle(active))

    async def _wait_for_slot(self, run: WorkflowRun) -> bool:
        """Wait `Pending` for a workflow slot; False if the workflow was stopped meanwhile."""
        assert self._slots is not None
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

    async def _execute(self, active: _Active) -> None:
        run = active.run
        run.status["phase"] = "Running"
        run.status["startedAt"] = format_status_time(self.clock.now())
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
        run.status["finishedAt"] = format_status_time(self.clock.now())
        if run.status.get("startedAt") is None:
            run.status["startedAt"] = run.status["finishedAt"]
        if message:
            run.status["message"] = message
        set_phase_labels(run.workflow, phase)

    async def _settle(self, active: _Active) -> None:
        name = active.run.name
        await active.saver.flush()
        if active.run.status["phase"] in ("Succeeded", "Failed", "Error"):
            self._active.pop(name, None)
            if not self.settings.keep_work_dirs:
                await asyncio.to_thread(shutil.rmtree, self.settings.work_dir / name, True)
        elif self._active.get(name) is active:
            self._active.pop(name, None)  # cancelled while pending: stays queued in the store

    async def _save(self, active: _Active) -> None:
        workflow = active.run.workflow
        finished = workflow["status"].get("finishedAt")
        finished_at = self.clock.now() if finished else None
        await self._db(self._workflows.save, to_record(workflow, active.created_at, finished_at))

    async def _save_logs(self, lines: Sequence[LogLine]) -> None:
        await self._db(self._logs.append, lines)

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        """Run a store call in a thread; writes and reads share one lock (SQLite has one writer)."""
        if self._writer is None:
            raise EngineUnavailableError("the local engine is not started")
        async with self._writer:
            return await asyncio.to_thread(function, *args)

    async def get_workflow(self, name: str) -> Manifest:
        active = self._active.get(name)
        if active is not None:
            return _copy(active.run.workflow)
        record = await self._db(self._workflows.get, name)
        if record is None:
            raise WorkflowNotFoundError(name)
        return {**record.manifest, "status": record.status}

    async def wait_for_workflow(self, name: str, poll_seconds: float = 0.02) -> Manifest:
        """Not part of the protocol: wait until the workflow is completed and return it."""
        while (active := self._active.get(name)) is not None and active.task is not None:
            await asyncio.wait({active.task}, timeout=poll_seconds)
        return await self.get_workflow(name)

    async def list_workflows(self, label_selector: str = "") -> list[Manifest]:
        selector = parse_label_selector(label_selector)
        summaries = await self._db(self._workflows.list_summaries)
        names = [name for name, labels, _ in summaries if selector.matches(labels)]
        stored = {r.name: r for r in await self._db(self._workflows.get_many, names)}
        found = []
        for name in names:
            if (active := self._active.get(name)) is not None:
                found.append(_copy(active.run.workflow))
            elif (record := stored.get(name)) is not None:
                found.append({**record.manifest, "status": record.status})
        return found

    async def workflow_logs(self, name: str) -> list[LogEntry]:
        await self.get_workflow(name)
        lines = await self._db(self._logs.list, name)
        active = self._active.get(name)
        if active is not None:
            lines += [line for buffer in active.run.live_logs.values() for line in buffer]
        return [
            LogEntry(
                node_id=line.node_id,
                pod_name=line.pod_name,
                timestamp=format_log_time(line.timestamp),
                stream=line.stream,
                content=line.content,
            )
            for line in lines
        ]

    async def stop_workflow(self, name: str, message: str | None = None) -> Manifest:
        """Like `argo stop`: kill running steps, run exit handlers, end `Failed`."""
        active = self._active.get(name)
        if active is None:
            workflow = await self.get_workflow(name)
            raise WorkflowStateError(
                f"cannot stop workflow {name!r}: it is {workflow['status'].get('phase')}"
            )
        active.run.workflow["spec"]["shutdown"] = "Stop"
        active.run.request_stop(stop_message(), message or stop_message())
        active.run.on_change()
        return _copy(active.run.workflow)

    async def delete_workflow(self, name: str) -> None:
        active = self._active.get(name)
        if active is not None and active.task is not None:
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
        if not await self._db(self._workflows.delete, name):
            raise WorkflowNotFoundError(name)

    # workflow templates ------------------------------------------------------------------------

    async def create_workflow_template(self, manifest: Manifest) -> Manifest:
        template = self._checked_template(manifest)
        if "name" not in template["metadata"]:
            raise ManifestInvalidError("metadata.name", "is required")
        now = self.clock.now()
        template = new_object(template, self.settings.namespace, now)
        record = ObjectRecord(
            template["metadata"]["name"],
            self.settings.namespace,
            template["metadata"]["uid"],
            template,
            now,
        )
        if not await self._db(self._templates.insert, record):
            raise ObjectExistsError("WorkflowTemplate", record.name)
        return template

    async def update_workflow_template(self, manifest: Manifest) -> Manifest:
        template = self._checked_template(manifest)
        name = template["metadata"].get("name", "")
        current = await self.get_workflow_template(name)
        updated = {**template, "metadata": {**template["metadata"], **_server_metadata(current)}}
        await self._db(self._templates.replace, name, updated)
        return updated

    def _checked_template(self, manifest: Manifest) -> Manifest:
        check_supported(manifest, WORKFLOW_TEMPLATE)
        validate_metadata(manifest, "WorkflowTemplate")
        validate_spec(apply_template_defaults(manifest["spec"]), "spec", needs_entrypoint=False)
        return manifest

    async def get_workflow_template(self, name: str) -> Manifest:
        record = await self._db(self._templates.get, name)
        if record is None:
            raise WorkflowTemplateNotFoundError(name)
        return record.manifest

    async def delete_workflow_template(self, name: str) -> None:
        if not await self._db(self._templates.delete, name):
            raise WorkflowTemplateNotFoundError(name)

    async def submit_from_template(
        self, name: str, parameters: dict[str, str], labels: dict[str, str]
    ) -> Manifest:
        await self.get_workflow_template(name)
        manifest: Manifest = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": f"{name}-", "labels": {_TEMPLATE_LABEL: name, **labels}},
            "spec": {"workflowTemplateRef": {"name": name}},
        }
        if parameters:
            manifest["spec"]["arguments"] = {
                "parameters": [{"name": k, "value": v} for k, v in parameters.items()]
            }
        return await self.submit_workflow(manifest)

    # cron workflows: see scheduler/cron.py -----------------------------------------------------

    async def create_cron_workflow(self, manifest: Manifest) -> Manifest:
        return await self.crons.create(manifest)

    async def update_cron_workflow(self, manifest: Manifest) -> Manifest:
        return await self.crons.update(manifest)

    async def get_cron_workflow(self, name: str) -> Manifest:
        return await self.crons.get(name)

    async def delete_cron_workflow(self, name: str) -> None:
        await self.crons.delete(name)

    async def suspend_cron_workflow(self, name: str) -> Manifest:
        return await self.crons.set_suspend(name, True)

    async def resume_cron_workflow(self, name: str) -> Manifest:
        return await self.crons.set_suspend(name, False)

    async def run_in_store(self, function: Callable[..., T], *args: Any) -> T:
        """For the cron catalog: the same single-writer path to the store."""
        return await self._db(function, *args)


def _apply_workflow_metadata(workflow: Manifest, spec: Manifest) -> None:
    """`spec.workflowMetadata` labels and annotations are stamped on the Workflow, winning over
    its own (Argo's controller does it in `updateWorkflowMetadata`)."""
    extra: Manifest = spec.get("workflowMetadata") or {}
    metadata = workflow["metadata"]
    for key in ("labels", "annotations"):
        if extra.get(key):
            metadata[key] = {**(metadata.get(key) or {}), **extra[key]}


def _server_metadata(current: Manifest) -> dict[str, Any]:
    keys = ("uid", "namespace", "creationTimestamp")
    return {k: current["metadata"][k] for k in keys if k in current["metadata"]}


def _copy(manifest: Manifest) -> Manifest:
    copied: Manifest = orjson.loads(orjson.dumps(manifest))
    return copied
