"""Argo `when` conditions: govaluate-style expressions, evaluated after `{{...}}` substitution.

Supported: `==`, `!=`, `<`, `<=`, `>`, `>=`, `=~` / `!~` (regular expressions), `&&`, `||`, `!`,
parentheses, quoted strings, numbers and `true`/`false`. A bare word is a string, as in Argo's
examples (`heads == heads`). Numbers compare as numbers when both sides are numeric.
"""

from __future__ import annotations

import re

from gateway.engines.local.lexing import split_items

__all__ = ["evaluate_when"]

_ITEM = re.compile(
    r"""\s*(&&|\|\||==|!=|>=|<=|=~|!~|>|<|!|\(|\)|'[^']*'|"[^"]*"|[^\s()!=<>&|'"]+)"""
)
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<", "=~", "!~")
Value = str | float | bool


def evaluate_when(text: str) -> bool:
    """Evaluate a substituted condition; raise ValueError if it is malformed or not boolean."""
    items = split_items(_ITEM, text, "when")
    parser = _Parser(items)
    value = parser.parse_or()
    if parser.position != len(items):
        raise ValueError(f"unexpected {items[parser.position]!r} in when {text!r}")
    if not isinstance(value, bool):
        raise ValueError(f"when {text!r} does not evaluate to a boolean")
    return value


class _Parser:
    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.position = 0

    def _peek(self) -> str | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def _next(self) -> str:
        item = self._peek()
        if item is None:
            raise ValueError("unexpected end of when expression")
        self.position += 1
        return item

    def parse_or(self) -> Value:
        value = self.parse_and()
        while self._peek() == "||":
            self.position += 1
            right = self.parse_and()
            value = _truth(value) or _truth(right)
        return value

    def parse_and(self) -> Value:
        value = self.parse_not()
        while self._peek() == "&&":
            self.position += 1
            right = self.parse_not()
            value = _truth(value) and _truth(right)
        return value

    def parse_not(self) -> Value:
        if self._peek() == "!":
            self.position += 1
            return not _truth(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Value:
        left = self.parse_primary()
        operator = self._peek()
        if operator not in _COMPARISONS:
            return left
        self.position += 1
        return _compare(left, operator, self.parse_primary())

    def parse_primary(self) -> Value:
        item = self._next()
        if item == "(":
            value = self.parse_or()
            if self._next() != ")":
                raise ValueError("missing ')' in when expression")
            return value
        if item in ("&&", "||", ")", *_COMPARISONS):
            raise ValueError(f"unexpected {item!r} in when expression")
        return _literal(item)


def _literal(item: str) -> Value:
    if item[0] in "'\"":
        return item[1:-1]
    if item in ("true", "false"):
        return item == "true"
    try:
        return float(item)
    except ValueError:
        return item


def _truth(value: Value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a boolean")
    return value


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return value


def _compare(left: Value, operator: str, right: Value) -> bool:
    if operator in ("=~", "!~"):
        found = re.search(_text(right), _text(left)) is not None
        return found if operator == "=~" else not found
    numeric = isinstance(left, float) and isinstance(right, float)
    if operator in ("==", "!="):
        equal = left == right if numeric else _text(left) == _text(right)
        return equal if operator == "==" else not equal
    if not numeric:
        raise ValueError(f"cannot compare {left!r} {operator} {right!r}: not numbers")
    assert isinstance(left, float)
    assert isinstance(right, float)
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[
        operator
    ]
