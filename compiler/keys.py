"""Where each object lives in the artifact repository (S3 keys; the embedded engine's folder).

This module is the layout, for the compiler's manifests, the gateway and the engines alike:

    pipelines/<pipeline>/code.tar.gz            a pipeline's code (and dependencies.tar.gz)
    inputs/<upload id>/<input>                  a run's or a trigger's file inputs
    executions/<workflow>/<step>/<output>       file outputs not mapped to the data store
    datastore/<path>                            the data store (and outputs mapped to it)
    uploads/<upload id>/...                     multipart uploads in progress (embedded storage)
    logs/<workflow>/<pod>/main.log              archived step logs (LOGS_KEY_FORMAT)

Keys are relative to a key prefix (``TENDER_S3_PREFIX``, empty by default). The gateway's
storage adds it itself; manifests carry key-only S3 artifacts (Argo docs, "Key-Only
Artifacts"), whose keys Argo takes as they are, so ``with_key_prefix`` writes it into them.
Manifests never carry a bucket or credentials: those come from the artifact repository.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from compiler.errors import CompileError

__all__ = [
    "ABSENT_FILE_KEY",
    "DATASTORE_PREFIX",
    "LOGS_KEY_FORMAT",
    "UPLOADS_PREFIX",
    "code_key",
    "datastore_key",
    "dependencies_key",
    "execution_prefix",
    "logs_prefix",
    "pipeline_prefix",
    "resolve_key",
    "run_input_key",
    "run_inputs_prefix",
    "step_output_key",
    "with_key_prefix",
]

DATASTORE_PREFIX = "datastore/"
UPLOADS_PREFIX = "uploads/"
# The artifact repository's keyFormat (Argo puts archived logs there, as <keyFormat>/main.log).
LOGS_KEY_FORMAT = "logs/{{workflow.name}}/{{pod.name}}"

# The key an optional file input takes when no file was given: nothing is ever stored there,
# and the input artifact is optional, so the step sees no file and the function its default.
ABSENT_FILE_KEY = "inputs/absent"

# The datastore path placeholders the SDK documents (io.py:222-229), as Argo variables.
_CREATED = "{{workflow.creationTimestamp.%s}}"
_PLACEHOLDERS = {
    "{execution_id}": "{{workflow.name}}",
    "{date_time}": "".join(_CREATED % c for c in "Ymd")
    + "_"
    + "".join(_CREATED % c for c in "HMS"),
    "{date}": "".join(_CREATED % c for c in "Ymd"),
}


def pipeline_prefix(pipeline_name: str) -> str:
    """Everything stored for one pipeline (deleted with it)."""
    return f"pipelines/{pipeline_name}/"


def code_key(pipeline_name: str) -> str:
    return pipeline_prefix(pipeline_name) + "code.tar.gz"


def dependencies_key(pipeline_name: str) -> str:
    return pipeline_prefix(pipeline_name) + "dependencies.tar.gz"


def run_inputs_prefix(upload_id: str) -> str:
    """The file inputs sent with one run or trigger."""
    return f"inputs/{upload_id}/"


def run_input_key(upload_id: str, input_name: str) -> str:
    return run_inputs_prefix(upload_id) + input_name


def execution_prefix(workflow_name: str) -> str:
    """The file outputs of one execution (deleted with it)."""
    return f"executions/{workflow_name}/"


def logs_prefix(workflow_name: str) -> str:
    """The archived step logs of one execution, ``<prefix>/<pod>/main.log`` (LOGS_KEY_FORMAT)."""
    return f"logs/{workflow_name}/"


def step_output_key(step_name: str, output_name: str) -> str:
    return execution_prefix("{{workflow.name}}") + f"{step_name}/{output_name}"


def datastore_key(path: str, field: str) -> str:
    """The key of a datastore object, with the execution placeholders turned into Argo's."""
    check_datastore_path(path, field)
    for placeholder, variable in _PLACEHOLDERS.items():
        path = path.replace(placeholder, variable)
    return DATASTORE_PREFIX + path


def check_datastore_path(path: str, field: str) -> None:
    """Refuse paths that could leave the datastore's root, or that Argo would expand."""
    problem = None
    if not path or path.startswith("/"):
        problem = "must be a non-empty relative path"
    elif "\\" in path or "\0" in path:
        problem = "must not contain backslashes or NUL characters"
    elif any(part in {"", ".", ".."} for part in path.rstrip("/").split("/")):
        problem = "must not contain empty, '.' or '..' segments"
    elif "{{" in path or "}}" in path:
        problem = "must not contain '{{' or '}}'"
    if problem:
        raise CompileError(field, "datastore_path", f"datastore path {path!r} {problem}")


_VARIABLE = re.compile(r"\{\{workflow\.(name|creationTimestamp\.([A-Za-z]))\}\}")


def resolve_key(key: str, workflow_name: str, created_at: datetime) -> str:
    """A key of this module as Argo resolves it for one Workflow (its name and creation time)."""

    def variable(match: re.Match[str]) -> str:
        strftime_char = match.group(2)
        return workflow_name if strftime_char is None else created_at.strftime(f"%{strftime_char}")

    return _VARIABLE.sub(variable, key)


def with_key_prefix(manifest: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``manifest`` with ``prefix`` written before every artifact's ``s3.key`` (in place)."""
    if prefix:
        _prefix_keys(manifest, prefix)
    return manifest


def _prefix_keys(node: Any, prefix: str) -> None:
    if isinstance(node, dict):
        s3 = node.get("s3")
        if isinstance(s3, dict) and isinstance(s3.get("key"), str):
            s3["key"] = prefix + s3["key"]
        for value in node.values():
            _prefix_keys(value, prefix)
    elif isinstance(node, list):
        for value in node:
            _prefix_keys(value, prefix)
