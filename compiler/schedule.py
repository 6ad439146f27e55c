"""CRON schedules: five fields, read in UTC, in the dialect both croniter and Argo accept."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from croniter import CroniterBadDateError, croniter

from compiler.errors import CompileError

__all__ = ["check_schedule"]

_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
# Where the search for a first firing starts: a constant keeps the compiler free of the clock.
# 2000 is a leap year and croniter looks decades ahead, so only a day that no year has
# (30 February, 31 April) is found to never come.
_SEARCH_FROM = datetime(2000, 1, 1, tzinfo=UTC)


def check_schedule(expression: str, field: str) -> None:
    """Refuse what Argo's parser (robfig/cron ``ParseStandard``) or croniter would not read,
    and a schedule that can never fire (Argo would accept it and never run it)."""
    fields = expression.split()
    problem = None
    if len(fields) != 5:
        problem = f"has {len(fields)} fields; a schedule has 5 (minute hour day month weekday)"
    elif not all(_FIELD.fullmatch(f) for f in fields) or any(f == "L" for f in fields):
        problem = "uses characters outside digits, names, '*', '/', ',', '-' and '?'"
    elif not croniter.is_valid(expression):
        problem = "is not a valid cron expression"
    elif not _ever_fires(expression):
        problem = "never fires: no month has the day of the month it names"
    if problem:
        raise CompileError(field, "schedule", f"schedule {expression!r} {problem}")


def _ever_fires(expression: str) -> bool:
    try:
        croniter(expression, _SEARCH_FROM).get_next(datetime)
    except CroniterBadDateError:
        return False
    return True
