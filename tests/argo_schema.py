"""Argo's JSON schema, made strict, as a validator built once per test session.

Two changes to upstream's schema (see ../shared/argo/SOURCE.md): IntOrString accepts integers,
as Kubernetes does, and every object definition that lists its properties refuses others, so
that a misspelt field fails instead of passing silently.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

ARGO_DIR = Path(__file__).parent / "argo"
_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate")


@cache
def strict_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ARGO_DIR / "schema.json").read_text())
    schema = copy.deepcopy(schema)
    definitions = schema["definitions"]
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["integer", "string"]}
    for definition in definitions.values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return schema


@cache
def _validator(kind: str) -> Draft202012Validator:
    root = {k: v for k, v in strict_schema().items() if k != "oneOf"}
    root["$ref"] = f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"
    return Draft202012Validator(root)


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Messages of every schema violation of an Argo manifest (empty when it is valid)."""
    kind = manifest.get("kind")
    if kind not in _KINDS:
        return [f"kind {kind!r} is not one of {', '.join(_KINDS)}"]
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in _validator(kind).iter_errors(manifest)
    ]
