"""Errors raised by the compiler.

CompileError            bad input: names the field and the rule it broke
└── (no subclasses yet: callers match on ``field`` and ``rule``)
"""

from __future__ import annotations

__all__ = ["CompileError"]


class CompileError(ValueError):
    """A definition cannot become a manifest. ``field`` is a dotted path into the input."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message
