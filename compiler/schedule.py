"""CRON schedules: five fields, read in UTC, in the dialect both croniter and Argo accept."""

from __future__ import annotations

import re

from croniter import croniter

from compiler.errors import CompileError

__all__ = ["check_schedule"]

_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")


def check_schedule(expression: str, field: str) -> None:
    """Refuse what Argo's parser (robfig/cron ``ParseStandard``) or croniter would not read."""
    fields = expression.split()
    problem = None
    if len(fields) != 5:
        problem = f"has {len(fields)} fields; a schedule has 5 (minute hour day month weekday)"
    elif not all(_FIELD.fullmatch(f) for f in fields) or any(f == "L" for f in fields):
        problem = "uses characters outside digits, names, '*', '/', ',', '-' and '?'"
    elif not croniter.is_valid(expression):
        problem = "is not a valid cron expression"
    if problem:
        raise CompileError(field, "schedule", f"schedule {expression!r} {problem}")
