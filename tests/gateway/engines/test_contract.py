"""The Engine protocol's watch contract, run on every engine (docs/ARCHITECTURE.md, "How the
gateway learns about state"). Only the protocol is used, with manifests any Argo accepts, so that
the Argo engine runs this same module against a real cluster (test_contract_objects.py holds
the rest of the protocol)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from gateway.engines.base import Engine, Manifest, WatchEvent
from gateway.engines.errors import WatchExpiredError
from tests.gateway.engines.engine_kits import KitFactory
from tests.gateway.engines.engine_manifests import sh, workflow

EngineOpener = Callable[[], AbstractAsyncContextManager[Engine]]
_ENDED = {"Succeeded", "Failed", "Error"}
_ORDER = {"Pending": 0, "Running": 1, "Succeeded": 2, "Failed": 2, "Error": 2}


@pytest.fixture
def open_any_engine(engine_kit: KitFactory) -> EngineOpener:
    """Each engine (``engine_kits``): the embedded one, and Argo's on the test cluster."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Engine]:
        async with engine_kit() as kit:
            yield kit.engine

    return opened


def _labelled(name: str, labels: dict[str, str], script: str = "echo hi") -> Manifest:
    return workflow([sh("main", script)], metadata={"name": name, "labels": labels})


def _phase(workflow: Manifest) -> str:
    return str((workflow.get("status") or {}).get("phase") or "Pending")


def _visible(workflow: Manifest) -> tuple[Any, ...]:
    """What a reader of the execution sees: phases of the workflow and its nodes, outputs."""
    status = workflow.get("status") or {}
    nodes = status.get("nodes") or {}
    return (
        status.get("phase"),
        tuple(sorted((i, n.get("phase"), str(n.get("outputs"))) for i, n in nodes.items())),
        str(status.get("outputs")),
    )


async def _collect(
    events: AsyncGenerator[WatchEvent, None], until: Callable[[list[WatchEvent]], bool]
) -> list[WatchEvent]:
    seen: list[WatchEvent] = []

    async def read() -> None:
        async for event in events:
            seen.append(event)
            if until(seen):
                return

    await asyncio.wait_for(read(), 30)
    return seen


def _ended(name: str) -> Callable[[list[WatchEvent]], bool]:
    return lambda seen: any(
        e["object"]["metadata"]["name"] == name and _phase(e["object"]) in _ENDED for e in seen
    )


async def test_a_watch_from_a_snapshot_sees_every_visible_change_in_order(
    open_any_engine: EngineOpener,
) -> None:
    async with open_any_engine() as engine:
        listing = await engine.snapshot_workflows("contract=watch")
        assert listing["items"] == []
        events = engine.watch_workflows("contract=watch", listing["resource_version"])
        await engine.submit_workflow(_labelled("watched", {"contract": "watch"}))
        seen = await _collect(events, _ended("watched"))
        await events.aclose()

    assert seen[0]["type"] == "ADDED"
    assert {e["type"] for e in seen[1:]} <= {"MODIFIED"}
    assert all(e["object"]["metadata"]["name"] == "watched" for e in seen)
    assert all(e["object"]["metadata"].get("resourceVersion") for e in seen)
    phases = [_ORDER[_phase(e["object"])] for e in seen]
    assert phases == sorted(phases), "a workflow's events came out of order"
    assert _phase(seen[-1]["object"]) == "Succeeded"
    visible = [_visible(e["object"]) for e in seen]
    assert all(a != b for a, b in itertools.pairwise(visible)), "an event without a visible change"


async def test_a_snapshot_holds_what_its_version_says(open_any_engine: EngineOpener) -> None:
    async with open_any_engine() as engine:
        await engine.submit_workflow(_labelled("early", {"contract": "snapshot"}))
        for _ in range(300):
            listing = await engine.snapshot_workflows("contract=snapshot")
            if listing["items"] and _phase(listing["items"][0]) in _ENDED:
                break
            await asyncio.sleep(0.05)
        names = [w["metadata"]["name"] for w in listing["items"]]
        assert names == ["early"]
        assert _phase(listing["items"][0]) == "Succeeded"
        # Nothing changed since: a watch from the listing's version starts with the next change.
        events = engine.watch_workflows("contract=snapshot", listing["resource_version"])
        await engine.submit_workflow(_labelled("late", {"contract": "snapshot"}))
        seen = await _collect(events, _ended("late"))
        await events.aclose()
    assert {e["object"]["metadata"]["name"] for e in seen} == {"late"}


async def test_a_watch_sees_only_what_its_selector_matches(open_any_engine: EngineOpener) -> None:
    async with open_any_engine() as engine:
        version = (await engine.snapshot_workflows())["resource_version"]
        events = engine.watch_workflows("contract=mine", version)
        await engine.submit_workflow(_labelled("other", {"contract": "other"}))
        await engine.submit_workflow(_labelled("mine", {"contract": "mine"}))
        seen = await _collect(events, _ended("mine"))
        await events.aclose()
    assert {e["object"]["metadata"]["name"] for e in seen} == {"mine"}


async def test_deleting_a_workflow_is_an_event(open_any_engine: EngineOpener) -> None:
    async with open_any_engine() as engine:
        version = (await engine.snapshot_workflows())["resource_version"]
        events = engine.watch_workflows("contract=delete", version)
        await engine.submit_workflow(_labelled("gone", {"contract": "delete"}, "sleep 30"))
        await _collect(events, lambda seen: _phase(seen[-1]["object"]) == "Running")
        await engine.delete_workflow("gone")
        seen = await _collect(events, lambda seen: seen[-1]["type"] == "DELETED")
        await events.aclose()
    assert seen[-1]["object"]["metadata"]["name"] == "gone"


async def test_a_watch_from_a_version_no_longer_held_expires(
    open_any_engine: EngineOpener,
) -> None:
    async with open_any_engine() as engine:
        events = engine.watch_workflows("", "1")
        with pytest.raises(WatchExpiredError):
            await asyncio.wait_for(anext(events), 10)
