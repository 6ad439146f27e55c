"""Dates as the platform writes them: ISO 8601 in UTC with milliseconds, like JavaScript's
``toISOString`` (craft-api.md section 9.4)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_date", "parse_argo_time"]


def format_date(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_argo_time(text: str | None) -> datetime | None:
    """Argo's RFC 3339 timestamps (``2025-01-01T10:00:00Z``); None stays None."""
    return None if not text else datetime.fromisoformat(text)
