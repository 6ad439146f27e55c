"""What the Argo engine adds to every Workflow it submits, and how it watches.

The compiler's manifests say nothing about the installation; the engine writes these settings
(from ``TENDER_ARGO_*``) into each Workflow, WorkflowTemplate and CronWorkflow spec, unless the
manifest sets them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ARTIFACT_REPOSITORIES_CONFIGMAP", "ArgoEngineSettings"]

# Argo's own default name for a namespace's artifact repositories (docs/artifact-repository-ref.md).
ARTIFACT_REPOSITORIES_CONFIGMAP = "artifact-repositories"


@dataclass(frozen=True)
class ArgoEngineSettings:
    namespace: str
    # ttlStrategy.secondsAfterCompletion: Argo deletes a finished Workflow (and, through the
    # garbage collector, its pods) this long after it ended. None: never.
    ttl_s: int | None = 86400
    # podGC.strategy: OnPodCompletion, OnPodSuccess, OnWorkflowCompletion, OnWorkflowSuccess;
    # None: pods stay until their Workflow goes.
    pod_gc: str | None = "OnPodSuccess"
    service_account: str | None = None  # the steps' (spec.serviceAccountName)
    # A key of the namespace's `artifact-repositories` ConfigMap (spec.artifactRepositoryRef);
    # None: Argo's default repository for the namespace.
    artifact_repository: str | None = None
    ui_url: str | None = None  # the Argo UI's base URL, for the link logged per execution
    # A watch asks the API server to end it after this long; the engine then resumes it from
    # the last version seen (bookmarks keep that version recent).
    watch_timeout_s: int = 300

    def amend_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` (a WorkflowSpec) with the installation's settings where it has none."""
        amended = dict(spec)
        amended.setdefault("archiveLogs", True)
        if self.ttl_s is not None:
            amended.setdefault("ttlStrategy", {"secondsAfterCompletion": self.ttl_s})
        if self.pod_gc:
            amended.setdefault("podGC", {"strategy": self.pod_gc})
        if self.service_account:
            amended.setdefault("serviceAccountName", self.service_account)
        if self.artifact_repository:
            amended.setdefault(
                "artifactRepositoryRef",
                {"configMap": ARTIFACT_REPOSITORIES_CONFIGMAP, "key": self.artifact_repository},
            )
        return amended

    def ui_link(self, workflow_name: str) -> str | None:
        if not self.ui_url:
            return None
        return f"{self.ui_url.rstrip('/')}/workflows/{self.namespace}/{workflow_name}"
