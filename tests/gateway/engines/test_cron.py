"""CronWorkflows on an injected clock: names, labels, policies, deadlines, suspend."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.engines.errors import (
    CronWorkflowNotFoundError,
    ManifestInvalidError,
    ManifestRefusedError,
    WorkflowStateError,
)
from gateway.engines.local import LocalEngine, ManualClock, SystemClock
from tests.gateway.engines.engine_manifests import EngineFactory, sh

START = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)


def _cron(
    name: str = "nightly", script: str = "echo {{workflow.scheduledTime}}", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name, "labels": {"not": "propagated"}},
        "spec": {
            "schedules": ["* * * * *"],
            "workflowMetadata": {"labels": {"tender.io/trigger": "periodic"}},
            "workflowSpec": {"entrypoint": "main", "templates": [sh("main", script)]},
            **spec,
        },
    }


async def _children(engine: LocalEngine, name: str = "nightly") -> list[dict[str, Any]]:
    return await engine.list_workflows(f"workflows.argoproj.io/cron-workflow={name}")


async def _tick(engine: LocalEngine) -> list[str]:
    """Tick, then name every child, oldest first (the background loop may have ticked first)."""
    await engine.crons.tick()
    return sorted(w["metadata"]["name"] for w in await _children(engine))


async def test_a_due_schedule_submits_an_argo_named_child(open_engine: EngineFactory) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        created = await engine.create_cron_workflow(_cron())
        assert await _tick(engine) == []
        await clock.advance(60)  # 12:01:30 -> the 12:01:00 schedule is due
        names = await _tick(engine)
        assert await _tick(engine) == names  # not twice
        child = await engine.wait_for_workflow(names[0])
        cron = await engine.get_cron_workflow("nightly")
    scheduled = datetime(2025, 3, 1, 12, 1, tzinfo=UTC)
    assert names == [f"nightly-{int(scheduled.timestamp())}"]
    assert "lastScheduledTime" not in created["status"]
    assert child["metadata"]["labels"]["workflows.argoproj.io/cron-workflow"] == "nightly"
    assert child["metadata"]["labels"]["tender.io/trigger"] == "periodic"
    assert "not" not in child["metadata"]["labels"]
    assert child["metadata"]["annotations"]["workflows.argoproj.io/scheduled-time"] == (
        "2025-03-01T12:01:00Z"
    )
    assert child["status"]["phase"] == "Succeeded"
    root = child["status"]["nodes"][names[0]]
    assert root["outputs"]["result"] == "2025-03-01T12:01:00Z"
    assert cron["status"]["lastScheduledTime"] == "2025-03-01T12:01:00Z"
    assert cron["status"]["succeeded"] == 1
    assert cron["status"]["active"] == []


async def test_only_the_latest_missed_run_and_several_schedules(
    open_engine: EngineFactory,
) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron(schedules=["0 * * * *", "30 12 * * *"]))
        await clock.set(datetime(2025, 3, 1, 14, 10, tzinfo=UTC))
        names = await _tick(engine)
        await engine.wait_for_workflow(names[0])
    assert names == [f"nightly-{int(datetime(2025, 3, 1, 14, 0, tzinfo=UTC).timestamp())}"]


async def test_timezone(open_engine: EngineFactory) -> None:
    clock = ManualClock(datetime(2025, 3, 1, 8, 30, tzinfo=UTC))
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron(schedules=["0 9 * * *"], timezone="Europe/Paris"))
        await clock.advance(3600)  # 09:30 UTC is 10:30 in Paris: 09:00 Paris = 08:00 UTC passed
        assert await _tick(engine) == []
        await clock.set(datetime(2025, 3, 2, 8, 1, tzinfo=UTC))
        names = await _tick(engine)
        await engine.wait_for_workflow(names[0])
    assert names == [f"nightly-{int(datetime(2025, 3, 2, 8, 0, tzinfo=UTC).timestamp())}"]


async def test_starting_deadline_skips_late_runs(open_engine: EngineFactory) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron(startingDeadlineSeconds=10))
        await clock.set(datetime(2025, 3, 1, 12, 1, 20, tzinfo=UTC))  # 20 s late
        assert await _tick(engine) == []
        await clock.set(datetime(2025, 3, 1, 12, 2, 5, tzinfo=UTC))  # 5 s late
        names = await _tick(engine)
        await engine.wait_for_workflow(names[0])
    assert len(names) == 1


async def test_suspend_and_resume(open_engine: EngineFactory) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron())
        suspended = await engine.suspend_cron_workflow("nightly")
        await clock.advance(60)
        assert await _tick(engine) == []
        resumed = await engine.resume_cron_workflow("nightly")
        await clock.advance(60)
        names = await _tick(engine)
        await engine.wait_for_workflow(names[0])
    assert suspended["spec"]["suspend"] is True
    assert resumed["spec"]["suspend"] is False
    assert len(names) == 1


@pytest.mark.parametrize(("policy", "expected"), [("Allow", 2), ("Forbid", 1), ("Replace", 2)])
async def test_concurrency_policy(open_engine: EngineFactory, policy: str, expected: int) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron(script="sleep 30", concurrencyPolicy=policy))
        await clock.advance(60)
        first = (await _tick(engine))[0]
        await clock.advance(60)
        second = [n for n in await _tick(engine) if n != first]
        children = await _children(engine, "nightly")
        for child in children:
            if child["status"]["phase"] in ("Pending", "Running"):
                # It may end (Replace stops it) between the listing and this call.
                with contextlib.suppress(WorkflowStateError):
                    await engine.stop_workflow(child["metadata"]["name"])
        stopped = await engine.wait_for_workflow(first)
    assert len(children) == expected
    assert len(second) == expected - 1
    assert stopped["status"]["phase"] == "Failed"


async def test_history_limits_delete_old_completed_children(open_engine: EngineFactory) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron(successfulJobsHistoryLimit=1))
        for _ in range(3):
            await clock.advance(60)
            await engine.wait_for_workflow((await _tick(engine))[-1])
        await _tick(engine)
        children = await _children(engine, "nightly")
    assert len(children) == 1


async def test_update_get_delete(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        created = await engine.create_cron_workflow(_cron())
        updated = await engine.update_cron_workflow(_cron(schedules=["0 0 * * *"]))
        await engine.delete_cron_workflow("nightly")
        with pytest.raises(CronWorkflowNotFoundError):
            await engine.get_cron_workflow("nightly")
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["spec"]["schedules"] == ["0 0 * * *"]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"schedules": []}, ManifestInvalidError, "spec.schedules"),
        ({"schedules": ["@every 1h"]}, ManifestRefusedError, "spec.schedules[0]"),
        ({"timezone": "Mars/Olympus"}, ManifestInvalidError, "spec.timezone"),
        ({"concurrencyPolicy": "Sometimes"}, ManifestInvalidError, "spec.concurrencyPolicy"),
        ({"when": "true"}, ManifestRefusedError, "spec.when"),
    ],
)
async def test_bad_cron_workflows_are_refused(
    open_engine: EngineFactory, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    async with open_engine() as engine:
        with pytest.raises(error) as raised:
            await engine.create_cron_workflow(_cron(**change))
    assert str(raised.value).startswith(message)


async def test_cron_name_longer_than_52_is_refused(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        with pytest.raises(ManifestInvalidError, match="52"):
            await engine.create_cron_workflow(_cron(name="c" * 53))


async def test_crons_survive_a_restart(open_engine: EngineFactory) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron())
    async with open_engine(clock=clock) as engine:
        await clock.advance(60)
        names = await _tick(engine)
        await engine.wait_for_workflow(names[0])
    assert len(names) == 1


async def test_the_system_clock_never_wakes_before_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncio may wake a sleeper early by the wall clock; sleep_until must not return then."""
    clock = SystemClock()
    real_sleep = asyncio.sleep

    async def early_sleep(delay: float) -> None:
        await real_sleep(delay * 0.5)  # wakes halfway, as an early timer would

    monkeypatch.setattr("gateway.engines.local.clock.asyncio.sleep", early_sleep)
    when = clock.now() + timedelta(milliseconds=40)
    await clock.sleep_until(when)
    assert clock.now() >= when


async def test_a_broken_schedule_is_marked_once_and_never_holds_up_the_others(
    open_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """30 February never comes: that CronWorkflow is marked and logged once, and the healthy
    one (listed after it) still fires, from the scheduler's own loop as from `tick`."""
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        await engine.create_cron_workflow(_cron("a-broken", schedules=["0 0 30 2 *"]))
        await engine.create_cron_workflow(_cron())
        await clock.advance(60)  # 12:01:30: the loop wakes for the healthy schedule alone
        for _ in range(200):
            if await _children(engine):
                break
            await asyncio.sleep(0.02)
        fired = await _children(engine)
        for _ in range(3):
            await clock.advance(60)
            await engine.crons.tick()
        broken = await engine.get_cron_workflow("a-broken")
        healthy = await engine.get_cron_workflow("nightly")
        await engine.delete_cron_workflow("a-broken")
    assert [c["metadata"]["name"] for c in fired] == [
        f"nightly-{int(datetime(2025, 3, 1, 12, 1, tzinfo=UTC).timestamp())}"
    ]
    assert healthy["status"]["conditions"] == []
    [condition] = broken["status"]["conditions"]
    assert condition["type"] == "SpecError"
    assert "0 0 30 2 *" in condition["message"]
    warnings = [r for r in caplog.records if "a-broken" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "Traceback" not in caplog.text


async def test_a_failed_submission_is_marked_until_a_child_is_submitted(
    open_engine: EngineFactory,
) -> None:
    clock = ManualClock(START)
    async with open_engine(clock=clock) as engine:
        missing = {"entrypoint": "main", "workflowTemplateRef": {"name": "gone"}}
        await engine.create_cron_workflow(_cron(workflowSpec=missing))
        await engine.create_cron_workflow(_cron("other"))
        await clock.advance(60)
        fired = await engine.crons.tick()
        failing = await engine.get_cron_workflow("nightly")
        await engine.update_cron_workflow(_cron())
        cleared = await engine.get_cron_workflow("nightly")
        await clock.advance(60)
        refired = await engine.crons.tick()
    assert [name.split("-")[0] for name in fired] == ["other"]
    [condition] = failing["status"]["conditions"]
    assert condition["type"] == "SubmissionError"
    assert "gone" in condition["message"]
    assert cleared["status"]["conditions"] == []
    assert sorted(name.split("-")[0] for name in refired) == ["nightly", "other"]
