"""Kubernetes' list-then-watch, in process: resource versions, recent events, and watchers.

Every change gets the next resource version of one counter. It starts at the engine's start time
in microseconds, so that a version handed out by an earlier engine is older than any of this one
and its watch expires instead of resuming at the wrong place. The last `capacity` events are kept:
a watch from an older version raises `WatchExpiredError`, as the API server answers 410 Gone once
etcd compacted them; so does a watcher that falls `capacity` events behind.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from gateway.engines.base import Manifest, WatchEvent
from gateway.engines.errors import WatchExpiredError
from gateway.engines.label_selector import LabelSelector, parse_label_selector

__all__ = ["EventLog"]

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(eq=False)
class _Watcher:
    selector: LabelSelector
    queue: deque[tuple[int, WatchEvent]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    expired: bool = False


class EventLog:
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._version = time.time_ns() // 1000
        self._recent: deque[tuple[int, WatchEvent]] = deque(maxlen=capacity)
        self._watchers: set[_Watcher] = set()
        self._closed = False

    @property
    def version(self) -> str:
        return str(self._version)

    def publish(self, event_type: EventType, workflow: Manifest) -> str:
        """Record a change of `workflow` (a copy nobody changes later); return its version."""
        self._version += 1
        workflow["metadata"]["resourceVersion"] = str(self._version)
        event = WatchEvent(type=event_type, object=workflow)
        self._recent.append((self._version, event))
        labels = workflow["metadata"].get("labels") or {}
        for watcher in self._watchers:
            if watcher.expired or not watcher.selector.matches(labels):
                continue
            if len(watcher.queue) >= self._capacity:
                watcher.expired = True
            else:
                watcher.queue.append((self._version, event))
            watcher.wake.set()
        return str(self._version)

    def close(self) -> None:
        """End every watch after the events already published (the engine is stopping)."""
        self._closed = True
        for watcher in self._watchers:
            watcher.wake.set()

    async def watch(self, label_selector: str, resource_version: str) -> AsyncIterator[WatchEvent]:
        selector = parse_label_selector(label_selector)
        start = self._start(resource_version)
        watcher = _Watcher(selector)
        # Registered before replaying, in the same step: no event can fall between the two.
        watcher.queue.extend(
            (version, event)
            for version, event in self._recent
            if version > start and selector.matches(event["object"]["metadata"].get("labels") or {})
        )
        self._watchers.add(watcher)
        try:
            while True:
                while watcher.queue:
                    _, event = watcher.queue.popleft()
                    yield event
                if watcher.expired:
                    raise WatchExpiredError("the watcher fell too far behind: list again")
                if self._closed:
                    return
                watcher.wake.clear()
                await watcher.wake.wait()
        finally:
            self._watchers.discard(watcher)

    def _start(self, resource_version: str) -> int:
        if not resource_version:
            return self._version
        try:
            start = int(resource_version)
        except ValueError:
            raise WatchExpiredError(f"resource version {resource_version!r} is unknown") from None
        oldest = self._recent[0][0] - 1 if self._recent else self._version
        if start < oldest or start > self._version:
            raise WatchExpiredError(f"resource version {resource_version} is too old")
        return start
