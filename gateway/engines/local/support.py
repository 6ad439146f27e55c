"""Which fields of an Argo manifest the local engine interprets; everything else is refused.

The shapes below list every supported field. `check_supported` walks a manifest against them and
raises `ManifestRefusedError` naming the first unsupported field with its exact path
(`spec.templates[2].volumes`), or `ManifestInvalidError` when a field has the wrong JSON type.
A few fields are accepted and ignored because they cannot change what a step computes locally:
`image`, `imagePullPolicy`, `resources`, `serviceAccountName` and server-set metadata.
"""

from __future__ import annotations

from typing import Any

from gateway.engines.errors import ManifestInvalidError, ManifestRefusedError
from gateway.engines.local.templating import TAG_RE

__all__ = ["CRON_WORKFLOW", "WORKFLOW", "WORKFLOW_TEMPLATE", "check_supported"]

ANY: dict[str, Any] = {}  # a leaf: any JSON value
Shape = dict[str, Any] | list[Any] | str

_SCALAR = "scalar"
_STRINGS = ["scalar"]
_LABELS = "mapping"  # an object with arbitrary string keys

_PARAMETER = {
    "name": _SCALAR,
    "value": _SCALAR,
    "default": _SCALAR,
    "description": _SCALAR,
    "enum": _STRINGS,
}
_OUTPUT_PARAMETER = {
    "name": _SCALAR,
    "value": _SCALAR,
    "valueFrom": {"path": _SCALAR, "default": _SCALAR, "parameter": _SCALAR},
    "globalName": _SCALAR,
    "description": _SCALAR,
}
_S3 = {"key": _SCALAR}
_ARCHIVE = {"none": {}, "tar": {"compressionLevel": _SCALAR}}
_INPUT_ARTIFACT = {
    "name": _SCALAR,
    "path": _SCALAR,
    "s3": _S3,
    "optional": _SCALAR,
    "archive": _ARCHIVE,
}
_ARGUMENT_ARTIFACT = {
    "name": _SCALAR,
    "from": _SCALAR,
    "s3": _S3,
    "optional": _SCALAR,
    "archive": _ARCHIVE,
}
_OUTPUT_ARTIFACT = {
    "name": _SCALAR,
    "path": _SCALAR,
    "s3": _S3,
    "archive": _ARCHIVE,
    "optional": _SCALAR,
    "globalName": _SCALAR,
    "from": _SCALAR,
}
_ARGUMENTS = {"parameters": [_PARAMETER], "artifacts": [_ARGUMENT_ARTIFACT]}
_ENV = {
    "name": _SCALAR,
    "value": _SCALAR,
    "valueFrom": {"secretKeyRef": {"name": _SCALAR, "key": _SCALAR, "optional": _SCALAR}},
}
_ENV_FROM = {"prefix": _SCALAR, "secretRef": {"name": _SCALAR, "optional": _SCALAR}}
_CONTAINER = {
    "name": _SCALAR,
    "image": _SCALAR,
    "command": _STRINGS,
    "args": _STRINGS,
    "env": [_ENV],
    "envFrom": [_ENV_FROM],
    "imagePullPolicy": _SCALAR,
    "resources": ANY,
}
_SCRIPT = {**_CONTAINER, "source": _SCALAR}
_HOOKS = {"exit": {"template": _SCALAR, "arguments": _ARGUMENTS}}
_DAG_TASK = {
    "name": _SCALAR,
    "template": _SCALAR,
    "arguments": _ARGUMENTS,
    "dependencies": _STRINGS,
    "depends": _SCALAR,
    "when": _SCALAR,
    "onExit": _SCALAR,
    "hooks": _HOOKS,
}
_STEP = {
    "name": _SCALAR,
    "template": _SCALAR,
    "arguments": _ARGUMENTS,
    "when": _SCALAR,
    "onExit": _SCALAR,
    "hooks": _HOOKS,
    "continueOn": {"failed": _SCALAR, "error": _SCALAR},
}
_RETRY = {
    "limit": _SCALAR,
    "retryPolicy": _SCALAR,
    "backoff": {"duration": _SCALAR, "factor": _SCALAR, "maxDuration": _SCALAR, "cap": _SCALAR},
}
_TEMPLATE_DEFAULTS = {
    "inputs": {"parameters": [_PARAMETER], "artifacts": [_INPUT_ARTIFACT]},
    "outputs": {"parameters": [_OUTPUT_PARAMETER], "artifacts": [_OUTPUT_ARTIFACT]},
    "container": _CONTAINER,
    "script": _SCRIPT,
    "dag": {"tasks": [_DAG_TASK], "failFast": _SCALAR},
    "steps": [[_STEP]],
    "retryStrategy": _RETRY,
    "activeDeadlineSeconds": _SCALAR,
    "timeout": _SCALAR,
    "parallelism": _SCALAR,
}
_TEMPLATE = {"name": _SCALAR, **_TEMPLATE_DEFAULTS}
_METADATA = {
    "name": _SCALAR,
    "generateName": _SCALAR,
    "namespace": _SCALAR,
    "labels": _LABELS,
    "annotations": _LABELS,
    "uid": _SCALAR,
    "creationTimestamp": _SCALAR,
    "resourceVersion": _SCALAR,
    "generation": _SCALAR,
}
_WORKFLOW_METADATA = {"labels": _LABELS, "annotations": _LABELS}
_SPEC = {
    "entrypoint": _SCALAR,
    "templates": [_TEMPLATE],
    "arguments": _ARGUMENTS,
    "onExit": _SCALAR,
    "activeDeadlineSeconds": _SCALAR,
    "parallelism": _SCALAR,
    "templateDefaults": _TEMPLATE_DEFAULTS,
    "workflowMetadata": _WORKFLOW_METADATA,
    "serviceAccountName": _SCALAR,
}
WORKFLOW = {
    "apiVersion": _SCALAR,
    "kind": _SCALAR,
    "metadata": _METADATA,
    "spec": {**_SPEC, "workflowTemplateRef": {"name": _SCALAR}},
    "status": ANY,
}
WORKFLOW_TEMPLATE = {"apiVersion": _SCALAR, "kind": _SCALAR, "metadata": _METADATA, "spec": _SPEC}
CRON_WORKFLOW = {
    "apiVersion": _SCALAR,
    "kind": _SCALAR,
    "metadata": _METADATA,
    "spec": {
        "schedules": _STRINGS,
        "timezone": _SCALAR,
        "suspend": _SCALAR,
        "concurrencyPolicy": _SCALAR,
        "startingDeadlineSeconds": _SCALAR,
        "successfulJobsHistoryLimit": _SCALAR,
        "failedJobsHistoryLimit": _SCALAR,
        "workflowSpec": {**_SPEC, "workflowTemplateRef": {"name": _SCALAR}},
        "workflowMetadata": _WORKFLOW_METADATA,
    },
    "status": ANY,
}


def check_supported(manifest: Any, shape: Shape, path: str = "") -> None:
    """Raise if `manifest` has a field outside `shape` (refused) or of a wrong type (invalid)."""
    if shape is ANY:
        return
    if shape == _SCALAR:
        _check_scalar(manifest, path)
    elif shape == _LABELS:
        _check_labels(manifest, path)
    elif isinstance(shape, list):
        if not isinstance(manifest, list):
            raise ManifestInvalidError(path, "must be a list")
        for index, item in enumerate(manifest):
            check_supported(item, shape[0], f"{path}[{index}]")
    elif isinstance(shape, dict):
        if not isinstance(manifest, dict):
            raise ManifestInvalidError(path, "must be an object")
        for key, value in manifest.items():
            child = f"{path}.{key}" if path else key
            if key not in shape:
                raise ManifestRefusedError(child, "is not supported by the local engine")
            check_supported(value, shape[key], child)


def _check_scalar(value: Any, path: str) -> None:
    if isinstance(value, dict | list):
        raise ManifestInvalidError(path, "must be a string, a number or a boolean")
    if isinstance(value, str) and any(
        m.group(1).lstrip().startswith("=") for m in TAG_RE.finditer(value)
    ):
        raise ManifestRefusedError(
            path, "uses an expression tag ({{= ...}}), which is not supported by the local engine"
        )


def _check_labels(value: Any, path: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestInvalidError(path, "must map strings to strings")
