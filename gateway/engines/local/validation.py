"""Semantic checks at submission: what Argo's validator would reject, and what the local engine
needs (a command, since an image's entrypoint is unknown). Raise `ManifestInvalidError`."""

from __future__ import annotations

import re
from typing import Any

from gateway.engines.base import Manifest
from gateway.engines.errors import ManifestInvalidError, ManifestRefusedError
from gateway.engines.local.dag import depends_of
from gateway.engines.local.durations import parse_duration

__all__ = ["validate_metadata", "validate_spec"]

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
_KINDS = ("container", "script", "dag", "steps")
_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")


def validate_metadata(manifest: Manifest, kind: str, max_name: int = 63) -> None:
    if manifest.get("apiVersion") != "argoproj.io/v1alpha1":
        raise ManifestInvalidError("apiVersion", "must be argoproj.io/v1alpha1")
    if manifest.get("kind") != kind:
        raise ManifestInvalidError("kind", f"must be {kind}")
    metadata = manifest.get("metadata") or {}
    name = metadata.get("name")
    if name is None and not metadata.get("generateName"):
        raise ManifestInvalidError("metadata.name", "or metadata.generateName is required")
    if name is not None and (len(str(name)) > max_name or not _DNS_NAME.match(str(name))):
        raise ManifestInvalidError(
            "metadata.name", f"must be a DNS-1123 name of at most {max_name} characters"
        )
    if "spec" not in manifest:
        raise ManifestInvalidError("spec", "is required")


def validate_spec(spec: Manifest, path: str, *, needs_entrypoint: bool = True) -> None:
    """Check a (resolved) WorkflowSpec: templates, references, DAGs, retries, deadlines.

    A WorkflowTemplate may omit `entrypoint` (the Workflow referencing it then names one).
    """
    templates = spec.get("templates") or []
    names = [t.get("name") for t in templates]
    for index, template in enumerate(templates):
        _check_template(template, f"{path}.templates[{index}]", set(names))
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ManifestInvalidError(f"{path}.templates", f"has duplicate names {sorted(duplicates)}")
    for field in ("entrypoint", "onExit"):
        if field in spec and spec[field] not in names:
            raise ManifestInvalidError(f"{path}.{field}", f"names no template: {spec[field]!r}")
    if needs_entrypoint and "entrypoint" not in spec:
        raise ManifestInvalidError(f"{path}.entrypoint", "is required")
    for field in ("activeDeadlineSeconds", "parallelism"):
        if field in spec:
            _check_int(spec[field], f"{path}.{field}")


def _check_template(template: Manifest, path: str, names: set[Any]) -> None:
    if not _FIELD_NAME.match(str(template.get("name", ""))):
        raise ManifestInvalidError(f"{path}.name", "must match [a-zA-Z0-9][-a-zA-Z0-9]*")
    kinds = [kind for kind in _KINDS if kind in template]
    if len(kinds) != 1:
        raise ManifestInvalidError(path, "must define exactly one of container, script, dag, steps")
    kind = kinds[0]
    if kind in ("container", "script") and not template[kind].get("command"):
        raise ManifestRefusedError(
            f"{path}.{kind}.command",
            "is required by the local engine (an image's entrypoint is unknown without the image)",
        )
    if kind == "script" and "source" not in template["script"]:
        raise ManifestInvalidError(f"{path}.script.source", "is required")
    if kind == "dag":
        _check_dag(template["dag"].get("tasks") or [], f"{path}.dag.tasks", names)
    if kind == "steps":
        _check_steps(template["steps"], f"{path}.steps", names)
    _check_io(template, path)
    _check_limits(template, path)


def _check_reference(item: Manifest, path: str, names: set[Any]) -> None:
    if not _FIELD_NAME.match(str(item.get("name", ""))):
        raise ManifestInvalidError(f"{path}.name", "must match [a-zA-Z0-9][-a-zA-Z0-9]*")
    if item.get("template") not in names:
        raise ManifestInvalidError(
            f"{path}.template", f"names no template: {item.get('template')!r}"
        )
    exit_template = item.get("onExit", item.get("hooks", {}).get("exit", {}).get("template"))
    if exit_template is not None and exit_template not in names:
        raise ManifestInvalidError(f"{path}.onExit", f"names no template: {exit_template!r}")


def _check_dag(tasks: list[Manifest], path: str, names: set[Any]) -> None:
    task_names = [t.get("name") for t in tasks]
    graph: dict[str, frozenset[str]] = {}
    for index, task in enumerate(tasks):
        where = f"{path}[{index}]"
        _check_reference(task, where, names)
        if "depends" in task and "dependencies" in task:
            raise ManifestInvalidError(where, "cannot use both 'depends' and 'dependencies'")
        try:
            expression = depends_of(task)
        except ValueError as exc:
            raise ManifestInvalidError(f"{where}.depends", str(exc)) from exc
        graph[task["name"]] = expression.tasks if expression else frozenset()
        unknown = sorted(graph[task["name"]] - set(task_names))
        if unknown:
            raise ManifestInvalidError(f"{where}.depends", f"names unknown tasks {unknown}")
    if len(set(task_names)) != len(task_names):
        raise ManifestInvalidError(path, "has duplicate task names")
    _check_acyclic(graph, path)


def _check_acyclic(graph: dict[str, frozenset[str]], path: str) -> None:
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise ManifestInvalidError(
                path, f"has a dependency cycle: {' -> '.join((*trail, name))}"
            )
        if name not in done:
            for dependency in sorted(graph[name]):
                visit(dependency, (*trail, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def _check_steps(groups: list[Any], path: str, names: set[Any]) -> None:
    seen: set[str] = set()
    for index, group in enumerate(groups):
        for position, step in enumerate(group):
            where = f"{path}[{index}][{position}]"
            _check_reference(step, where, names)
            if step["name"] in seen:
                raise ManifestInvalidError(f"{where}.name", f"duplicates step {step['name']!r}")
            seen.add(step["name"])


def _check_io(template: Manifest, path: str) -> None:
    for direction in ("inputs", "outputs"):
        for kind in ("parameters", "artifacts"):
            for index, item in enumerate(template.get(direction, {}).get(kind, [])):
                if not _PARAM_NAME.match(str(item.get("name", ""))):
                    raise ManifestInvalidError(
                        f"{path}.{direction}.{kind}[{index}].name", "must match [-a-zA-Z0-9_]+"
                    )


def _check_limits(template: Manifest, path: str) -> None:
    retry = template.get("retryStrategy")
    if retry is not None:
        if "limit" in retry:
            _check_int(retry["limit"], f"{path}.retryStrategy.limit")
        if retry.get("retryPolicy", "OnFailure") not in _POLICIES:
            raise ManifestInvalidError(
                f"{path}.retryStrategy.retryPolicy", f"must be one of {_POLICIES}"
            )
        for key, value in (retry.get("backoff") or {}).items():
            if key != "factor":
                _check_duration(value, f"{path}.retryStrategy.backoff.{key}")
    for key in ("activeDeadlineSeconds", "timeout"):
        if key in template:
            _check_duration(template[key], f"{path}.{key}")
    if "parallelism" in template:
        _check_int(template["parallelism"], f"{path}.parallelism")


def _check_int(value: Any, path: str) -> None:
    try:
        int(value)
    except (TypeError, ValueError):
        raise ManifestInvalidError(path, f"must be an integer, not {value!r}") from None


def _check_duration(value: Any, path: str) -> None:
    if isinstance(value, str) and "{{" in value:
        return  # resolved when the template runs
    try:
        parse_duration(value)
    except (TypeError, ValueError):
        raise ManifestInvalidError(path, f"must be a duration, not {value!r}") from None
