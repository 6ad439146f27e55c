"""The local engine's list-then-watch bookkeeping: versions, replay, expiry, slow watchers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.engines.errors import WatchExpiredError
from gateway.engines.local.events import EventLog


def _workflow(name: str, phase: str = "Running", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "status": {"phase": phase}}


async def _next(events: Any) -> Any:
    return await asyncio.wait_for(anext(events), 5)


async def test_a_watch_replays_what_came_after_its_version_then_follows() -> None:
    log = EventLog()
    start = log.version
    log.publish("ADDED", _workflow("a"))
    events = log.watch("", start)
    first = await _next(events)
    log.publish("MODIFIED", _workflow("a", "Succeeded"))
    second = await _next(events)
    assert (first["type"], second["type"]) == ("ADDED", "MODIFIED")
    assert int(second["object"]["metadata"]["resourceVersion"]) > int(
        first["object"]["metadata"]["resourceVersion"]
    )
    await events.aclose()


async def test_a_watch_with_a_selector_skips_other_workflows() -> None:
    log = EventLog()
    events = log.watch("team=data", log.version)
    log.publish("ADDED", _workflow("other", team="web"))
    log.publish("ADDED", _workflow("mine", team="data"))
    assert (await _next(events))["object"]["metadata"]["name"] == "mine"
    await events.aclose()


async def test_versions_of_an_earlier_engine_or_dropped_events_expire() -> None:
    earlier = EventLog()
    old = earlier.version
    log = EventLog(capacity=2)
    for name in "abc":
        log.publish("ADDED", _workflow(name))
    for version in (old, "1", "not-a-version"):
        with pytest.raises(WatchExpiredError):
            await _next(log.watch("", version))


async def test_a_watcher_that_falls_too_far_behind_is_told_to_list_again() -> None:
    log = EventLog(capacity=2)
    events = log.watch("", log.version)
    waiting = asyncio.ensure_future(_next(events))
    await asyncio.sleep(0.05)  # the watch is registered
    for name in "abcd":  # the watcher reads nothing meanwhile
        log.publish("ADDED", _workflow(name))
    assert (await waiting)["object"]["metadata"]["name"] == "a"
    received = [(await _next(events))["object"]["metadata"]["name"]]
    with pytest.raises(WatchExpiredError):
        received.append((await _next(events))["object"]["metadata"]["name"])
    assert received == ["b"]


async def test_closing_ends_every_watch_after_the_events_already_published() -> None:
    log = EventLog()
    events = log.watch("", log.version)
    log.publish("ADDED", _workflow("last"))
    log.close()
    seen = [event async for event in events]
    assert [e["object"]["metadata"]["name"] for e in seen] == ["last"]
