"""The spec a Workflow actually runs: its WorkflowTemplate resolved, `templateDefaults` applied."""

from __future__ import annotations

import copy
from typing import Any

from gateway.engines.base import Manifest

__all__ = ["apply_template_defaults", "deep_merge", "merge_arguments", "merge_template_spec"]


def deep_merge(base: Any, override: Any) -> Any:
    """`override` wins; objects merge key by key (lists are replaced, not merged)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def apply_template_defaults(spec: Manifest) -> Manifest:
    """Every template gets `spec.templateDefaults` under its own fields, as Argo merges them.

    Defaults for another kind of template (`container` on a `dag` template) are left out.
    """
    defaults: Manifest = spec.get("templateDefaults") or {}
    if not defaults:
        return spec
    kinds = ("container", "script", "dag", "steps")
    templates = []
    for template in spec["templates"]:
        applicable = {k: v for k, v in defaults.items() if k not in kinds or k in template}
        templates.append(deep_merge(applicable, template))
    return {**spec, "templates": templates}


def merge_arguments(base: Manifest | None, override: Manifest | None) -> Manifest:
    """Parameters and artifacts merged by name, `override` winning."""
    merged: Manifest = {}
    for kind in ("parameters", "artifacts"):
        items = {i["name"]: i for i in (base or {}).get(kind, [])}
        items.update({i["name"]: i for i in (override or {}).get(kind, [])})
        if items:
            merged[kind] = list(items.values())
    return merged


def merge_template_spec(template_spec: Manifest, workflow_spec: Manifest) -> Manifest:
    """A Workflow's spec over the spec of the WorkflowTemplate it references."""
    own = {k: v for k, v in workflow_spec.items() if k != "workflowTemplateRef"}
    merged: Manifest = deep_merge(template_spec, {k: v for k, v in own.items() if k != "arguments"})
    arguments = merge_arguments(template_spec.get("arguments"), own.get("arguments"))
    if arguments:
        merged["arguments"] = arguments
    return merged
