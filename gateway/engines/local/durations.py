"""Durations as Argo writes them: a number of seconds ("30") or a Go duration ("1h30m", "2s")."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str | int | float) -> float:
    """Seconds; raise ValueError if `text` is neither a number nor a Go duration."""
    if isinstance(text, int | float):
        return float(text)
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    if not value or _PART.sub("", value):
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value))
