"""The per-execution Secret: how a running step gets what ``CraftAiSdk()`` needs.

Every step reads ``CRAFT_AI_SDK_TOKEN``, ``CRAFT_AI_ENVIRONMENT_URL`` and ``CRAFT_AI_CONTROL_URL``
through ``secretKeyRef`` from the Secret ``tender-execution-<workflow name>``, which the engine
provides: the embedded engine resolves the reference in the gateway, the Argo engine creates
the Secret when it sees the Workflow. Manifests therefore never hold the token, and name the
Secret with ``{{workflow.name}}`` (Argo substitutes it in the whole template), so that one
WorkflowTemplate or CronWorkflow serves every execution it starts.
"""

from __future__ import annotations

__all__ = [
    "EXECUTION_SECRET_PREFIX",
    "SDK_ENVIRONMENT",
    "execution_id_of_secret",
    "execution_secret_name",
]

EXECUTION_SECRET_PREFIX = "tender-execution-"  # noqa: S105 - a Secret's name, not a value

# Environment variable of the step -> key of the execution's Secret (craft-api.md 2.6).
SDK_ENVIRONMENT: dict[str, str] = {
    "CRAFT_AI_SDK_TOKEN": "sdk-token",
    "CRAFT_AI_ENVIRONMENT_URL": "environment-url",
    "CRAFT_AI_CONTROL_URL": "control-url",
}


def execution_secret_name(workflow_name: str) -> str:
    """Kubernetes Secret names are DNS subdomains: a Workflow name (at most 63) fits."""
    return EXECUTION_SECRET_PREFIX + workflow_name


def execution_id_of_secret(secret_name: str) -> str | None:
    """The execution a Secret name stands for, or None if it is no execution's Secret."""
    if not secret_name.startswith(EXECUTION_SECRET_PREFIX):
        return None
    return secret_name.removeprefix(EXECUTION_SECRET_PREFIX) or None
