"""ArgoEngine: the Engine protocol on the Kubernetes API of one namespace (no Argo Server).

Workflows, WorkflowTemplates and CronWorkflows of ``argoproj.io/v1alpha1`` are created with
POST, changed with JSON merge patches (``spec.shutdown``, ``spec.suspend``) or replaced with
PUT at the version read, listed by label selector and watched (``watch.py``). Every spec gets
the installation's settings (``ArgoEngineSettings.amend_spec``). Deleting also deletes what the
garbage collector would (a Workflow's pods, a CronWorkflow's Workflows), so that it holds the
same on a cluster that runs no garbage collector, and at once on one that does.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import AsyncIterator
from typing import Any

from gateway.engines.argo.client import KubeApiError, KubeClient, Object
from gateway.engines.argo.logs import LogArchive, archived_logs, workflow_logs
from gateway.engines.argo.objects import (
    CRON_WORKFLOWS,
    FINISHED_PHASES,
    STOP_MESSAGE_ANNOTATION,
    WORKFLOW_TEMPLATES,
    WORKFLOWS,
    Kind,
    newest_first,
    readable,
)
from gateway.engines.argo.settings import ArgoEngineSettings
from gateway.engines.argo.watch import watch_workflows
from gateway.engines.base import LogEntry, Manifest, WatchEvent, WorkflowList
from gateway.engines.errors import (
    EngineUnavailableError,
    ManifestInvalidError,
    ObjectExistsError,
    WorkflowNotFoundError,
    WorkflowStateError,
)
from gateway.engines.label_selector import parse_label_selector
from gateway.storage import StorageUnavailableError

__all__ = ["ArgoEngine"]

_log = logging.getLogger("tender.engines.argo")
_WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
_TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
_CRON_LABEL = "workflows.argoproj.io/cron-workflow"
_CONFLICT_RETRIES = 5


class ArgoEngine:
    """Runs manifests on a real Argo Workflows controller. Errors: `gateway.engines.errors`."""

    def __init__(
        self, client: KubeClient, settings: ArgoEngineSettings, archive: LogArchive | None = None
    ) -> None:
        self.client = client
        self.settings = settings
        self._archive = archive
        self._ns = settings.namespace

    # workflows ---------------------------------------------------------------------------------

    async def submit_workflow(self, manifest: Manifest) -> Manifest:
        body = copy.deepcopy(manifest)
        body["spec"] = self.settings.amend_spec(body.get("spec") or {})
        return await self._create(WORKFLOWS, body)

    async def get_workflow(self, name: str) -> Manifest:
        return await self._get(WORKFLOWS, name)

    async def list_workflows(self, label_selector: str = "") -> list[Manifest]:
        return (await self.snapshot_workflows(label_selector))["items"]

    async def snapshot_workflows(self, label_selector: str = "") -> WorkflowList:
        listed = await self._list(WORKFLOWS, label_selector)
        items = [readable(item, WORKFLOWS) for item in listed.get("items", [])]
        return WorkflowList(
            items=newest_first(items), resource_version=listed["metadata"]["resourceVersion"]
        )

    def watch_workflows(
        self, label_selector: str = "", resource_version: str = ""
    ) -> AsyncIterator[WatchEvent]:
        parse_label_selector(label_selector)
        return watch_workflows(
            self.client,
            self._ns,
            label_selector,
            resource_version,
            timeout_s=self.settings.watch_timeout_s,
            on_added=self._started,
        )

    def _started(self, workflow: Object) -> None:
        name = workflow["metadata"]["name"]
        if link := self.settings.ui_link(name):
            _log.info("execution %s started: %s", name, link)

    async def workflow_logs(self, name: str) -> list[LogEntry]:
        """While the Workflow exists, from its pods and archive; after, from the archive."""
        try:
            try:
                workflow = await self.get_workflow(name)
            except WorkflowNotFoundError:
                if self._archive is None:
                    raise
                entries = await archived_logs(self._archive, name)
                if not entries:
                    raise
                return entries
            return await workflow_logs(self.client, self._ns, workflow, self._archive)
        except StorageUnavailableError as exc:
            raise EngineUnavailableError(f"the archived logs of {name!r}: {exc}") from exc

    async def stop_workflow(self, name: str, message: str | None = None) -> Manifest:
        """Like `argo stop` (``spec.shutdown: Stop``: exit handlers run). The nodes Argo stops
        get its own message; ``message`` is kept in an annotation and read as theirs
        (``objects.readable``), as the embedded engine writes it."""
        workflow = await self.get_workflow(name)
        phase = workflow["status"].get("phase")
        if phase in FINISHED_PHASES:
            raise WorkflowStateError(f"cannot stop workflow {name!r}: it is {phase}")
        patch: Object = {"spec": {"shutdown": "Stop"}}
        if message:
            patch["metadata"] = {"annotations": {STOP_MESSAGE_ANNOTATION: message}}
        return await self._patch(WORKFLOWS, name, patch)

    async def delete_workflow(self, name: str) -> None:
        await self._delete(WORKFLOWS, name)
        await self._delete_pods(name)

    async def _delete_pods(self, workflow_name: str) -> None:
        await self.client.request(
            "DELETE",
            f"/api/v1/namespaces/{self._ns}/pods",
            params={"labelSelector": f"{_WORKFLOW_LABEL}={workflow_name}"},
        )

    # workflow templates ------------------------------------------------------------------------

    async def create_workflow_template(self, manifest: Manifest) -> Manifest:
        return await self._create(WORKFLOW_TEMPLATES, self._amended(manifest, ("spec",)))

    async def update_workflow_template(self, manifest: Manifest) -> Manifest:
        return await self._replace(WORKFLOW_TEMPLATES, self._amended(manifest, ("spec",)))

    async def get_workflow_template(self, name: str) -> Manifest:
        return await self._get(WORKFLOW_TEMPLATES, name)

    async def delete_workflow_template(self, name: str) -> None:
        await self._delete(WORKFLOW_TEMPLATES, name)

    async def submit_from_template(
        self, name: str, parameters: dict[str, str], labels: dict[str, str]
    ) -> Manifest:
        """What Argo's server does for `POST /workflows/{ns}/submit`: a Workflow that refers to
        the template, labelled with its name (the controller reads the template itself)."""
        await self.get_workflow_template(name)
        spec: dict[str, Any] = {"workflowTemplateRef": {"name": name}}
        if parameters:
            spec["arguments"] = {
                "parameters": [{"name": k, "value": v} for k, v in parameters.items()]
            }
        return await self.submit_workflow(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "metadata": {
                    "generateName": f"{name}-",
                    "labels": {_TEMPLATE_LABEL: name, **labels},
                },
                "spec": spec,
            }
        )

    # cron workflows ----------------------------------------------------------------------------

    async def create_cron_workflow(self, manifest: Manifest) -> Manifest:
        return await self._create(CRON_WORKFLOWS, self._amended(manifest, ("spec", "workflowSpec")))

    async def update_cron_workflow(self, manifest: Manifest) -> Manifest:
        amended = self._amended(manifest, ("spec", "workflowSpec"))
        return await self._replace(CRON_WORKFLOWS, amended)

    async def get_cron_workflow(self, name: str) -> Manifest:
        return await self._get(CRON_WORKFLOWS, name)

    async def delete_cron_workflow(self, name: str) -> None:
        """The CronWorkflow, then the Workflows it started (its dependents) and their pods."""
        await self._delete(CRON_WORKFLOWS, name)
        for workflow in await self.list_workflows(f"{_CRON_LABEL}={name}"):
            child = workflow["metadata"]["name"]
            with contextlib.suppress(WorkflowNotFoundError):
                await self._delete(WORKFLOWS, child)
            await self._delete_pods(child)

    async def suspend_cron_workflow(self, name: str) -> Manifest:
        return await self._patch(CRON_WORKFLOWS, name, {"spec": {"suspend": True}})

    async def resume_cron_workflow(self, name: str) -> Manifest:
        return await self._patch(CRON_WORKFLOWS, name, {"spec": {"suspend": False}})

    # the API -----------------------------------------------------------------------------------

    def _amended(self, manifest: Manifest, spec_path: tuple[str, ...]) -> Manifest:
        body = copy.deepcopy(manifest)
        parent = body
        for key in spec_path[:-1]:
            parent = parent.setdefault(key, {})
        parent[spec_path[-1]] = self.settings.amend_spec(parent.get(spec_path[-1]) or {})
        return body

    async def _create(self, kind: Kind, body: Manifest) -> Manifest:
        name = body.get("metadata", {}).get("name") or body.get("metadata", {}).get("generateName")
        try:
            created = await self.client.request("POST", kind.path(self._ns), body)
        except KubeApiError as exc:
            raise _translated(exc, kind, str(name)) from exc
        return readable(created, kind)

    async def _get(self, kind: Kind, name: str) -> Manifest:
        try:
            return readable(await self.client.get(kind.path(self._ns, name)), kind)
        except KubeApiError as exc:
            raise _translated(exc, kind, name) from exc

    async def _list(self, kind: Kind, label_selector: str) -> Object:
        parse_label_selector(label_selector)  # the same errors as the embedded engine's
        params = {"labelSelector": label_selector} if label_selector else {}
        return await self.client.get(kind.path(self._ns), **params)

    async def _patch(self, kind: Kind, name: str, patch: Object) -> Manifest:
        try:
            patched = await self.client.request("PATCH", kind.path(self._ns, name), patch)
        except KubeApiError as exc:
            raise _translated(exc, kind, name) from exc
        return readable(patched, kind)

    async def _replace(self, kind: Kind, body: Manifest) -> Manifest:
        """PUT at the version just read; the API refuses it (409) if the object changed since,
        and it is read again. The status is the controller's: kept as it is."""
        name = body["metadata"]["name"]
        for _ in range(_CONFLICT_RETRIES):
            current = await self._get(kind, name)
            metadata = {
                **body["metadata"],
                "resourceVersion": current["metadata"]["resourceVersion"],
            }
            replacement = {**body, "metadata": metadata}
            if "status" in current:
                replacement["status"] = current["status"]
            try:
                replaced = await self.client.request("PUT", kind.path(self._ns, name), replacement)
            except KubeApiError as exc:
                if exc.status == 409 and exc.reason == "Conflict":
                    continue
                raise _translated(exc, kind, name) from exc
            return readable(replaced, kind)
        raise WorkflowStateError(f"{kind.name} {name!r} kept changing while it was replaced")

    async def _delete(self, kind: Kind, name: str) -> None:
        try:
            await self.client.request("DELETE", kind.path(self._ns, name))
        except KubeApiError as exc:
            raise _translated(exc, kind, name) from exc


def _translated(exc: KubeApiError, kind: Kind, name: str) -> Exception:
    """The engine error for what the API answered about ``name`` of ``kind``."""
    if exc.status == 404 and exc.reason == "NotFound":
        return kind.not_found(name)
    if exc.status == 409 and exc.reason == "AlreadyExists":
        return ObjectExistsError(kind.name, name)
    if exc.status in (400, 422):
        cause = exc.causes[0] if exc.causes else {}
        return ManifestInvalidError(str(cause.get("field") or ""), _reason(exc, cause))
    return exc


def _reason(exc: KubeApiError, cause: Object) -> str:
    return str(cause.get("message") or exc.api_message)
