"""Argo's `depends` language for DAG tasks (docs/enhanced-depends-logic.md).

`A` alone means `(A.Succeeded || A.Skipped || A.Daemoned)`; results are `.Succeeded`, `.Failed`,
`.Errored`, `.Skipped`, `.Omitted`, `.Daemoned`, `.AnySucceeded`, `.AllFailed`; operators are
`&&`, `||`, `!` and parentheses. A plain `dependencies: [A, B]` list is `A && B`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.engines.local.lexing import split_items

__all__ = ["DependencyState", "DependsExpression", "parse_depends"]

_ITEM = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9][-A-Za-z0-9_]*(?:\.[A-Za-z]+)?)")
_RESULTS = {
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
}
_PHASE_OF_RESULT = {
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    "Errored": "Error",
    "Skipped": "Skipped",
    "Omitted": "Omitted",
}


@dataclass(frozen=True)
class DependencyState:
    phase: str
    child_phases: Sequence[str] = ()  # attempts of a Retry node


Evaluator = Callable[[Mapping[str, DependencyState]], bool]


@dataclass(frozen=True)
class DependsExpression:
    text: str
    tasks: frozenset[str]
    explicit: frozenset[str]  # tasks named with a result (`A.Failed`): their failure is handled
    evaluate: Evaluator


def parse_depends(text: str) -> DependsExpression:
    """Parse `text`; raise ValueError naming the problem."""
    items = split_items(_ITEM, text, "depends")
    parser = _Parser(items)
    evaluator = parser.parse_or()
    if parser.position != len(items):
        raise ValueError(f"unexpected {items[parser.position]!r} in depends {text!r}")
    return DependsExpression(text, frozenset(parser.tasks), frozenset(parser.explicit), evaluator)


class _Parser:
    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.position = 0
        self.tasks: set[str] = set()
        self.explicit: set[str] = set()

    def _peek(self) -> str | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def parse_or(self) -> Evaluator:
        terms = [self.parse_and()]
        while self._peek() == "||":
            self.position += 1
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else lambda s: any(term(s) for term in terms)

    def parse_and(self) -> Evaluator:
        terms = [self.parse_unary()]
        while self._peek() == "&&":
            self.position += 1
            terms.append(self.parse_unary())
        return terms[0] if len(terms) == 1 else lambda s: all(term(s) for term in terms)

    def parse_unary(self) -> Evaluator:
        item = self._peek()
        self.position += 1
        if item == "!":
            inner = self.parse_unary()
            return lambda s: not inner(s)
        if item == "(":
            inner = self.parse_or()
            if self._peek() != ")":
                raise ValueError("missing ')' in depends expression")
            self.position += 1
            return inner
        if item is None or item in ("&&", "||", ")"):
            raise ValueError(f"unexpected {item or 'end'!r} in depends expression")
        return self._atom(item)

    def _atom(self, item: str) -> Evaluator:
        task, _, result = item.partition(".")
        if result and result not in _RESULTS:
            raise ValueError(f"unknown task result {result!r} in depends expression")
        self.tasks.add(task)
        if result in ("Failed", "Errored", "AllFailed", "AnySucceeded"):
            self.explicit.add(task)
        if not result:
            return lambda s: s[task].phase in ("Succeeded", "Skipped")
        return lambda s: _has_result(s[task], result)


def _has_result(state: DependencyState, result: str) -> bool:
    if result == "Daemoned":
        return False
    if result == "AnySucceeded":
        return "Succeeded" in state.child_phases or state.phase == "Succeeded"
    if result == "AllFailed":
        phases = state.child_phases or [state.phase]
        return all(phase == "Failed" for phase in phases)
    return state.phase == _PHASE_OF_RESULT[result]
