"""Kubernetes label selectors (`a=b,c!=d,e in (x,y),f notin (z),!g,h`), as Argo's list accepts them.

Semantics follow k8s `labels.Parse`: `!=` and `notin` also match objects without the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.engines.errors import InvalidLabelSelectorError

__all__ = ["LabelSelector", "parse_label_selector"]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")

Requirement = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement(labels) for requirement in self.requirements)


def parse_label_selector(selector: str) -> LabelSelector:
    """Parse a selector; raise `InvalidLabelSelectorError` on bad syntax. "" matches everything."""
    return LabelSelector(tuple(_parse_requirement(part) for part in _split(selector)))


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if depth != 0:
        raise InvalidLabelSelectorError(f"unbalanced parentheses in label selector {selector!r}")
    return [part for part in parts if part.strip()] if selector.strip() else []


def _parse_requirement(text: str) -> Requirement:
    if match := _SET_RE.match(text):
        key, operator = match.group(1), match.group(3)
        values = frozenset(value.strip() for value in match.group(4).split(","))
        if not all(_VALUE_RE.match(value) for value in values):
            raise InvalidLabelSelectorError(f"invalid value in label selector {text!r}")
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _CMP_RE.match(text):
        key, operator, value = match.group(1), match.group(3), match.group(4)
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.match(text):
        negated, key = match.group(1) == "!", match.group(2)
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise InvalidLabelSelectorError(f"invalid label selector requirement {text.strip()!r}")
