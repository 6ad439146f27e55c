"""Where each object lives in the artifact repository (S3 keys; the embedded engine's folder).

Every key here is relative to the namespace's artifact repository: manifests carry key-only
S3 artifacts (Argo docs, "Key-Only Artifacts") and never a bucket or credentials.
"""

from __future__ import annotations

import re
from datetime import datetime

from compiler.errors import CompileError

__all__ = [
    "ABSENT_FILE_KEY",
    "code_key",
    "datastore_key",
    "dependencies_key",
    "resolve_key",
    "run_input_key",
    "step_output_key",
]

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


def code_key(pipeline_name: str) -> str:
    return f"pipelines/{pipeline_name}/code.tar.gz"


def dependencies_key(pipeline_name: str) -> str:
    return f"pipelines/{pipeline_name}/dependencies.tar.gz"


def run_input_key(upload_id: str, input_name: str) -> str:
    return f"inputs/{upload_id}/{input_name}"


def step_output_key(step_name: str, output_name: str) -> str:
    return f"executions/{{{{workflow.name}}}}/{step_name}/{output_name}"


def datastore_key(path: str, field: str) -> str:
    """The key of a datastore object, with the execution placeholders turned into Argo's."""
    check_datastore_path(path, field)
    for placeholder, variable in _PLACEHOLDERS.items():
        path = path.replace(placeholder, variable)
    return f"datastore/{path}"


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
