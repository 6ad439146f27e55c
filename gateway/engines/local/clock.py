"""Time for the engine: a `Clock` protocol (injectable, so tests need not wait for a minute to
pass) and Argo's timestamp formats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "Clock",
    "ManualClock",
    "SystemClock",
    "format_log_time",
    "format_status_time",
    "format_time",
]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``. asyncio sleeps on the monotonic clock and may wake a
        little early by the wall clock: a cron woken at 10:59:59.9996 for 11:00 would find
        nothing due, then schedule itself for 11:01, and skip 11:00 altogether."""
        while (delay := (when - self.now()).total_seconds()) > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """A clock that only moves when a test moves it; sleepers wake when their time comes."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)
        async with self._moved:
            self._moved.notify_all()

    async def advance(self, seconds: float) -> None:
        await self.set(self._now + timedelta(seconds=seconds))

    async def sleep_until(self, when: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= when)


def format_time(when: datetime | None) -> str | None:
    """Kubernetes `metav1.Time`: RFC 3339, UTC, second precision, `Z`; a missing time is null."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_status_time(when: datetime) -> str:
    """When a workflow or node started or finished: RFC 3339 with milliseconds. Argo writes
    whole seconds there; the platform's dates have milliseconds, and a quick step would
    otherwise seem to end when it started (docs/ARCHITECTURE.md, "Dates")."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_log_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
