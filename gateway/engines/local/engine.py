"""LocalEngine: the Engine protocol on local processes, with state in the gateway's store.

Create it with the store's `Database` and settings, `await start()` it (recovers what a previous
process left, starts the cron scheduler), and `await close()` it (kills running steps; their
workflows end in `Error`). Writes go through the store's writer thread (batched); reads run in
worker threads. Running Workflows live in `runs.RunningWorkflows`; their changes reach watchers
through `events.EventLog`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson

from gateway.engines.base import LogEntry, Manifest, WatchEvent, WorkflowList
from gateway.engines.errors import (
    EngineUnavailableError,
    ObjectExistsError,
    WorkflowNotFoundError,
    WorkflowStateError,
)
from gateway.engines.label_selector import parse_label_selector
from gateway.engines.local.artifacts import ArtifactRepository
from gateway.engines.local.clock import Clock, SystemClock, format_log_time
from gateway.engines.local.context import EngineServices
from gateway.engines.local.events import EventLog
from gateway.engines.local.objects import generate_name, new_object, set_phase_labels
from gateway.engines.local.persistence import StatusSaver, mark_interrupted, to_record
from gateway.engines.local.recovery import (
    ProcessBook,
    kill_leftover_groups,
    remove_work_dirs,
    spooled_lines,
)
from gateway.engines.local.runs import RunningWorkflows
from gateway.engines.local.scheduler.cron import CronCatalog
from gateway.engines.local.scripts import CompiledScripts
from gateway.engines.local.settings import (
    InterpreterResolver,
    LocalEngineSettings,
    SecretLookup,
    resolve_default_interpreter,
)
from gateway.engines.local.specs import apply_template_defaults, merge_template_spec
from gateway.engines.local.support import WORKFLOW, check_supported
from gateway.engines.local.templates import TemplateCatalog
from gateway.engines.local.unpacked import UnpackedArchives
from gateway.engines.local.validation import validate_metadata, validate_spec
from gateway.engines.local.workflow import stop_message
from gateway.storage import LocalStorage, Storage
from gateway.store import (
    CronWorkflowRepository,
    Database,
    LogLine,
    StepLogRepository,
    StepProcessRepository,
    WorkflowRepository,
    WorkflowTemplateRepository,
)

__all__ = ["LocalEngine"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
RESTARTED_MESSAGE = "the local engine restarted while the workflow was running"
_TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"


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
        self._db = db
        self._workflows = WorkflowRepository(db)
        self._logs = StepLogRepository(db)
        self._processes = StepProcessRepository(db)
        self._secrets = secrets
        self._resolve_interpreter = resolve_interpreter
        self._events = EventLog()
        self._running: RunningWorkflows | None = None
        self.templates = TemplateCatalog(
            WorkflowTemplateRepository(db),
            self.clock,
            settings.namespace,
            read=self._read,
            write=self._write,
        )
        self._closed = False
        self.crons = CronCatalog(CronWorkflowRepository(db), self, self.clock, settings.namespace)

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what a previous process left behind and start the cron scheduler."""
        services = EngineServices(
            settings=self.settings,
            clock=self.clock,
            secrets=self._secrets,
            resolve_interpreter=self._resolve_interpreter,
            processes=asyncio.Semaphore(self.settings.max_processes),
            save_logs=self._save_logs,
            artifacts=self._artifacts,
            process_book=ProcessBook(self._db, self._processes),
            unpacked=UnpackedArchives(self.settings.unpacked_dir),
            scripts=CompiledScripts(self.settings.data_dir / "scripts"),
        )
        saver = StatusSaver(lambda statuses: self._write(self._workflows.save_statuses, statuses))
        await asyncio.to_thread(self.settings.work_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self.settings.artifacts_root.mkdir, parents=True, exist_ok=True)
        self._running = RunningWorkflows(self.settings, self.clock, self._events, saver, services)
        await self._recover()
        self.crons.start()

    async def close(self) -> None:
        """Kill every running step; running workflows end in `Error`, pending ones stay queued.
        Watches end after the last change. Closing twice is harmless."""
        if self._closed or self._running is None:
            return
        self._closed = True
        await self.crons.close()
        await self._running.close()
        self._events.close()

    async def __aenter__(self) -> LocalEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _recover(self) -> None:
        """Kill the steps a crashed engine left, keep the lines they wrote, end its running
        workflows in `Error` and queue its pending ones again."""
        recorded = await self._read(self._processes.list)
        killed = await asyncio.to_thread(kill_leftover_groups, recorded)
        if killed:
            _log.warning("killed %d step process groups left by a previous engine", len(killed))
        now = self.clock.now()
        pending = []
        for record in await self._read(self._workflows.list_in_phases, ["Running", "Pending"]):
            workflow = {**record.manifest, "status": record.status}
            if record.phase == "Pending":
                pending.append((workflow, record.created_at))
                continue
            lines = await asyncio.to_thread(spooled_lines, self.settings.work_dir, record.name)
            await self._write(self._logs.append, lines)
            mark_interrupted(workflow, RESTARTED_MESSAGE, now)
            await self._write(self._workflows.save, to_record(workflow, record.created_at, now))
        await self._write(self._processes.clear)
        if not self.settings.keep_work_dirs:
            await asyncio.to_thread(remove_work_dirs, self.settings.work_dir)
        running = self._running_or_fail()
        for workflow, created_at in pending:
            running.launch(workflow, await self._effective_spec(workflow), created_at)

    def _running_or_fail(self) -> RunningWorkflows:
        if self._running is None or self._closed:
            raise EngineUnavailableError("the local engine is not started")
        return self._running

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        """A store read, in a worker thread (SQLite in WAL mode: readers never wait)."""
        return await asyncio.to_thread(function, *args)

    async def _write(self, function: Callable[..., T], *args: Any) -> T:
        """A store write, on the store's writer thread, batched with others."""
        if self._running is None:
            raise EngineUnavailableError("the local engine is not started")
        return await self._db.writer.run(function, *args)

    async def _save_logs(self, lines: Sequence[LogLine]) -> None:
        await self._write(self._logs.append, lines)

    # workflows ---------------------------------------------------------------------------------

    async def submit_workflow(self, manifest: Manifest) -> Manifest:
        running = self._running_or_fail()
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
        running.publish_new(workflow)
        run = running.launch(workflow, spec, now)
        return _copy(run.workflow)

    async def _insert(self, workflow: Manifest, now: datetime) -> None:
        metadata = workflow["metadata"]
        explicit = "name" in metadata
        for _ in range(10):
            if not explicit:
                metadata["name"] = generate_name(metadata["generateName"])
            record = to_record(workflow, now, None, copy=False)  # launched once written
            if await self._write(self._workflows.insert, record):
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
            spec = merge_template_spec((await self.templates.shared(name))["spec"], spec)
        return apply_template_defaults(spec)

    async def get_workflow(self, name: str) -> Manifest:
        if self._running is not None and (run := self._running.get(name)) is not None:
            return _copy(run.workflow)
        record = await self._read(self._workflows.get, name)
        if record is None:
            raise WorkflowNotFoundError(name)
        return {**record.manifest, "status": record.status}

    async def wait_for_workflow(self, name: str, poll_seconds: float = 0.0) -> Manifest:
        """Not part of the protocol: wait until the workflow is completed and return it."""
        del poll_seconds  # kept for callers of the polling version: completion is awaited
        if self._running is not None:
            await self._running.wait(name)
        return await self.get_workflow(name)

    async def list_workflows(self, label_selector: str = "") -> list[Manifest]:
        return (await self.snapshot_workflows(label_selector))["items"]

    async def snapshot_workflows(self, label_selector: str = "") -> WorkflowList:
        """Running Workflows are copied before the store is read, at the version returned: one
        that ends meanwhile has its final status in the store already (`runs.py`)."""
        selector = parse_label_selector(label_selector)
        running = self._running_or_fail()
        version = self._events.version
        live = {}
        for name in running.names():
            copy = running.published(name)
            if copy is not None and selector.matches(copy["metadata"].get("labels") or {}):
                live[name] = copy
        summaries = await self._read(self._workflows.list_summaries)
        wanted = [n for n, labels, _ in summaries if n not in live and selector.matches(labels)]
        stored = {r.name: r for r in await self._read(self._workflows.get_many, wanted)}
        items = []
        for name, _, _ in summaries:
            if name in live:
                items.append(live[name])
            elif (record := stored.get(name)) is not None:
                items.append({**record.manifest, "status": record.status})
        return WorkflowList(items=items, resource_version=version)

    def watch_workflows(
        self, label_selector: str = "", resource_version: str = ""
    ) -> AsyncIterator[WatchEvent]:
        return self._events.watch(label_selector, resource_version)

    async def workflow_logs(self, name: str) -> list[LogEntry]:
        await self.get_workflow(name)
        lines = await self._read(self._logs.list, name)
        run = self._running.get(name) if self._running is not None else None
        if run is not None:
            lines += [line for buffer in list(run.live_logs.values()) for line in buffer]
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
        run = self._running.get(name) if self._running is not None else None
        # A run that just ended is still held while its last status is written.
        if run is None or run.workflow["status"].get("phase") in ("Succeeded", "Failed", "Error"):
            workflow = await self.get_workflow(name)
            raise WorkflowStateError(
                f"cannot stop workflow {name!r}: it is {workflow['status'].get('phase')}"
            )
        # A new spec object: published copies share the old one, which must not change.
        run.workflow["spec"] = {**run.workflow["spec"], "shutdown": "Stop"}
        run.request_stop(stop_message(), message or stop_message())
        run.on_change()
        created = datetime.fromisoformat(run.workflow["metadata"]["creationTimestamp"])
        await self._write(self._workflows.save, to_record(run.workflow, created, None))
        return _copy(run.workflow)

    async def delete_workflow(self, name: str) -> None:
        running = self._running_or_fail()
        last = running.published(name)
        await running.cancel(name)
        if last is None:
            record = await self._read(self._workflows.get, name)
            last = None if record is None else {**record.manifest, "status": record.status}
        if not await self._write(self._workflows.delete, name):
            raise WorkflowNotFoundError(name)
        if last is not None:
            running.publish_deleted(last)

    # workflow templates: see templates.py -----------------------------------------------------

    async def create_workflow_template(self, manifest: Manifest) -> Manifest:
        return await self.templates.create(manifest)

    async def update_workflow_template(self, manifest: Manifest) -> Manifest:
        return await self.templates.update(manifest)

    async def get_workflow_template(self, name: str) -> Manifest:
        return await self.templates.get(name)

    async def delete_workflow_template(self, name: str) -> None:
        await self.templates.delete(name)

    async def submit_from_template(
        self, name: str, parameters: dict[str, str], labels: dict[str, str]
    ) -> Manifest:
        await self.templates.shared(name)
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
        """For the cron catalog: the store's writer, as for the engine's own writes."""
        return await self._write(function, *args)


def _apply_workflow_metadata(workflow: Manifest, spec: Manifest) -> None:
    """`spec.workflowMetadata` labels and annotations are stamped on the Workflow, winning over
    its own (Argo's controller does it in `updateWorkflowMetadata`)."""
    extra: Manifest = spec.get("workflowMetadata") or {}
    metadata = workflow["metadata"]
    for key in ("labels", "annotations"):
        if extra.get(key):
            metadata[key] = {**(metadata.get(key) or {}), **extra[key]}


def _copy(manifest: Manifest) -> Manifest:
    copied: Manifest = orjson.loads(orjson.dumps(manifest))
    return copied
