"""The Engine protocol: Argo manifests in, Argo-shaped objects out.

Both engines (the Argo Server one and the embedded LocalEngine) implement it; the gateway never
knows which one it holds. Methods are named with Argo's verbs and take and return plain dicts
shaped exactly as Argo's REST API shapes them (https://argo-workflows.readthedocs.io/en/latest/swagger/).
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

__all__ = ["Engine", "LogEntry", "Manifest"]

Manifest = dict[str, Any]  # an Argo object, shaped exactly as Argo's REST API shapes it


class LogEntry(TypedDict):
    """One line a step wrote; `timestamp` is RFC 3339 UTC with microseconds."""

    node_id: str
    pod_name: str
    timestamp: str
    stream: str  # "stdout" | "stderr"
    content: str


class Engine(Protocol):
    """Runs Argo manifests. Errors are those of `gateway.engines.errors`."""

    async def submit_workflow(self, manifest: Manifest) -> Manifest: ...

    async def get_workflow(self, name: str) -> Manifest: ...

    async def list_workflows(self, label_selector: str = "") -> list[Manifest]:
        """Workflows matching a Kubernetes label selector, newest first."""
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
