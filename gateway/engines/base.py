"""The Engine protocol: Argo manifests in, Argo-shaped objects out.

Both engines (ArgoEngine on the Kubernetes API, the embedded LocalEngine) implement it; the
gateway never knows which one it holds. Methods are named with Argo's verbs and take and return
plain dicts shaped exactly as Argo's REST API shapes them (https://argo-workflows.readthedocs.io/en/latest/swagger/).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, TypedDict

__all__ = ["Engine", "LogEntry", "Manifest", "WatchEvent", "WorkflowList"]

Manifest = dict[str, Any]  # an Argo object, shaped exactly as Argo's REST API shapes it


class LogEntry(TypedDict):
    """One line a step wrote; `timestamp` is RFC 3339 UTC with microseconds."""

    node_id: str
    pod_name: str
    timestamp: str
    stream: str  # "stdout" | "stderr"
    content: str


class WatchEvent(TypedDict):
    """A change a reader can see, as a Kubernetes watch sends it.

    `object` is the whole Workflow after the change, `metadata.resourceVersion` set. It is
    shared with other watchers: read it, never change it.
    """

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    object: Manifest


class WorkflowList(TypedDict):
    items: list[Manifest]
    resource_version: str  # where a watch that follows this listing starts


class Engine(Protocol):
    """Runs Argo manifests. Errors are those of `gateway.engines.errors`."""

    async def submit_workflow(self, manifest: Manifest) -> Manifest: ...

    async def get_workflow(self, name: str) -> Manifest: ...

    async def list_workflows(self, label_selector: str = "") -> list[Manifest]:
        """Workflows matching a Kubernetes label selector, newest first."""
        ...

    async def snapshot_workflows(self, label_selector: str = "") -> WorkflowList:
        """The matching Workflows and the resource version they are current at."""
        ...

    def watch_workflows(
        self, label_selector: str = "", resource_version: str = ""
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version` (`""`: after this call), in order, until the caller
        stops iterating or the engine closes the watch (the iteration then ends; watch again
        from the last version seen).

        Raises `WatchExpiredError` (Kubernetes' 410 Gone) when changes that old are no longer
        held, or when the watcher fell too far behind: snapshot again and watch from there. An
        engine may merge several changes of one Workflow into one event; it never reorders the
        events of one Workflow.
        """
        ...

    async def workflow_logs(self, name: str) -> list[LogEntry]: ...

    async def stop_workflow(self, name: str, message: str | None = None) -> Manifest: ...

    async def delete_workflow(self, name: str) -> None: ...

    async def create_workflow_template(self, manifest: Manifest) -> Manifest: ...

    async def update_workflow_template(self, manifest: Manifest) -> Manifest: ...

    async def get_workflow_template(self, name: str) -> Manifest: ...

    async def delete_workflow_template(self, name: str) -> None: ...

    async def submit_from_template(
        self, name: str, parameters: dict[str, str], labels: dict[str, str]
    ) -> Manifest:
        """Like Argo's `POST /workflows/{ns}/submit` with `resourceKind: WorkflowTemplate`."""
        ...

    async def create_cron_workflow(self, manifest: Manifest) -> Manifest: ...

    async def update_cron_workflow(self, manifest: Manifest) -> Manifest: ...

    async def get_cron_workflow(self, name: str) -> Manifest: ...

    async def delete_cron_workflow(self, name: str) -> None: ...

    async def suspend_cron_workflow(self, name: str) -> Manifest: ...

    async def resume_cron_workflow(self, name: str) -> Manifest: ...
