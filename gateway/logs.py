"""Log lines as the SDK asks for them: ``{"from", "to"}`` in epoch milliseconds, ``limit``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LogQuery", "filter_logs"]


class LogQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_ms: int | None = Field(default=None, alias="from")
    to_ms: int | None = Field(default=None, alias="to")
    limit: int | None = Field(default=None, ge=0)


def filter_logs(lines: Iterable[dict[str, Any]], query: LogQuery) -> list[dict[str, Any]]:
    """Lines with ``from <= timestamp <= to``, in time order; ``limit`` keeps the latest ones."""
    kept = [line for line in lines if _within(line["timestamp"], query)]
    if query.limit is not None:
        kept = kept[len(kept) - query.limit :] if query.limit else []
    return kept


def _within(timestamp: str, query: LogQuery) -> bool:
    if query.from_ms is None and query.to_ms is None:
        return True
    when = datetime.fromisoformat(timestamp).astimezone(UTC).timestamp() * 1000
    return (query.from_ms is None or when >= query.from_ms) and (
        query.to_ms is None or when <= query.to_ms
    )
