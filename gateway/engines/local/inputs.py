"""Arguments bound to a template's inputs, and the `inputs.*` variables they define."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.engines.base import Manifest
from gateway.engines.local.templating import TAG_RE, UnresolvedTagError, substitute

__all__ = ["BindingError", "bind_inputs", "input_scope", "resolve_arguments"]


class BindingError(Exception):
    """An input cannot be bound; the message becomes the node's (phase Error)."""


def resolve_arguments(
    arguments: Manifest | None,
    scope: Mapping[str, str],
    artifact_scope: Mapping[str, Manifest],
) -> Manifest:
    """Substitute a task's or step's arguments; `from` artifacts become stored locations."""
    arguments = arguments or {}
    try:
        parameters = [
            {"name": p["name"], "value": substitute(str(p["value"]), scope)}
            for p in arguments.get("parameters", [])
            if "value" in p
        ]
    except UnresolvedTagError as exc:
        raise BindingError(str(exc)) from exc
    artifacts = [
        _resolve_artifact(a, scope, artifact_scope) for a in arguments.get("artifacts", [])
    ]
    return {"parameters": parameters, "artifacts": [a for a in artifacts if a is not None]}


def _resolve_artifact(
    artifact: Manifest, scope: Mapping[str, str], artifact_scope: Mapping[str, Manifest]
) -> Manifest | None:
    name = artifact["name"]
    if "from" in artifact:
        match = TAG_RE.fullmatch(str(artifact["from"]).strip())
        reference = match.group(1).strip() if match else ""
        found = artifact_scope.get(reference)
        if found is None:
            if artifact.get("optional"):
                return None
            raise BindingError(f"Unable to resolve: {artifact['from']}")
        return {**found, "name": name}
    if "s3" in artifact:
        try:
            key = substitute(str(artifact["s3"]["key"]), scope)
        except UnresolvedTagError as exc:
            raise BindingError(str(exc)) from exc
        return {"name": name, "s3": {"key": key}, **_optional(artifact), **_archive(artifact)}
    return None


def _optional(artifact: Manifest) -> dict[str, Any]:
    return {"optional": True} if artifact.get("optional") else {}


def _archive(artifact: Manifest) -> dict[str, Any]:
    return {"archive": artifact["archive"]} if "archive" in artifact else {}


def bind_inputs(template: Manifest, arguments: Manifest, scope: Mapping[str, str]) -> Manifest:
    """The node's `inputs`: argument values, else the input's `value`, else its `default`."""
    given = {p["name"]: p["value"] for p in arguments.get("parameters", [])}
    parameters = []
    for declared in template.get("inputs", {}).get("parameters", []):
        name = declared["name"]
        value = given.get(name, declared.get("value", declared.get("default")))
        if value is None:
            raise BindingError(f"inputs.parameters.{name} was not supplied")
        try:
            parameters.append({"name": name, "value": substitute(str(value), scope)})
        except UnresolvedTagError as exc:
            raise BindingError(str(exc)) from exc
    supplied = {a["name"]: a for a in arguments.get("artifacts", [])}
    artifacts = []
    for declared in template.get("inputs", {}).get("artifacts", []):
        argument = supplied.get(declared["name"])
        source = argument or _own_source(declared, scope)
        if source is None:
            if declared.get("optional"):
                continue
            raise BindingError(f"inputs.artifacts.{declared['name']} was not supplied")
        # As Argo does (workflow/common ProcessArgs), an argument replaces the declaration but
        # for its path: `optional` and `archive` are then the argument's, not the template's.
        placed = {**source, "name": declared["name"], **_path(declared)}
        if argument is None:
            placed |= _archive(declared)
        artifacts.append(placed)
    inputs: Manifest = {}
    if parameters:
        inputs["parameters"] = parameters
    if artifacts:
        inputs["artifacts"] = artifacts
    return inputs


def _own_source(declared: Manifest, scope: Mapping[str, str]) -> Manifest | None:
    if "s3" not in declared:
        return None
    try:
        return {"s3": {"key": substitute(str(declared["s3"]["key"]), scope)}, **_optional(declared)}
    except UnresolvedTagError as exc:
        raise BindingError(str(exc)) from exc


def _path(declared: Manifest) -> dict[str, Any]:
    """Where the template wants the artifact."""
    return {"path": declared["path"]} if "path" in declared else {}


def input_scope(inputs: Manifest) -> dict[str, str]:
    parameters = inputs.get("parameters", [])
    scope = {f"inputs.parameters.{p['name']}": p["value"] for p in parameters}
    scope["inputs.parameters"] = json.dumps(parameters, separators=(",", ":"))
    return scope
