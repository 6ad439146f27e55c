"""`{{...}}` substitution over strings and nested manifests, as Argo's `template.Replace` does.

A scope maps a variable name (`inputs.parameters.x`, `tasks.A.outputs.result`, ...) to its value.
Expression tags (`{{= ...}}`) are refused at submission (`support.py`), so never reach here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["TAG_RE", "UnresolvedTagError", "substitute", "substitute_all"]

TAG_RE = re.compile(r"\{\{([^{}]*)\}\}")

T = TypeVar("T")


class UnresolvedTagError(Exception):
    def __init__(self, tag: str) -> None:
        super().__init__(f"failed to resolve {{{{{tag}}}}}")
        self.tag = tag


def substitute(text: str, scope: Mapping[str, str], *, strict: bool = True) -> str:
    """Replace every tag found in `scope`; unknown tags raise if `strict`, else stay as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in scope:
            return scope[name]
        if strict:
            raise UnresolvedTagError(name)
        return match.group(0)

    return TAG_RE.sub(replace, text) if "{{" in text else text


def substitute_all(value: T, scope: Mapping[str, str], *, strict: bool = True) -> T:
    """`substitute` applied to every string inside nested dicts and lists (keys are left alone)."""
    result: Any
    if isinstance(value, str):
        result = substitute(value, scope, strict=strict)
    elif isinstance(value, dict):
        result = {key: substitute_all(item, scope, strict=strict) for key, item in value.items()}
    elif isinstance(value, list):
        result = [substitute_all(item, scope, strict=strict) for item in value]
    else:
        result = value
    return result  # type: ignore[no-any-return]
