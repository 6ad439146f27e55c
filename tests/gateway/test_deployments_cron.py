"""Periodic deployments against the app in-process, on a clock the test moves.

The app is built with ``create_app(settings, clock=ManualClock(...))``: the embedded engine's
scheduler then fires CronWorkflows when the test moves the clock, not when a minute passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.admin import create_sdk_token
from gateway.app import create_app
from gateway.engines.local import ManualClock
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.acceptance.folders import tar_gz

START = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
ADD = b"def add(a, b):\n    return {'total': a + b}\n"


class App:
    """The app, served in-process (httpx's ASGI transport) inside its own lifespan."""

    def __init__(self, client: httpx.AsyncClient, clock: ManualClock, services: Services) -> None:
        self.client = client
        self.clock = clock
        self.services = services

    async def wait_for(self, condition: Any, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = await condition()
            if found:
                return found
            await asyncio.sleep(0.05)
        pytest.fail("the condition did not hold in time")


@contextlib.asynccontextmanager
async def serve(data_dir: Path) -> AsyncIterator[App]:
    settings = Settings(data_dir=data_dir, long_poll_s=1.0)
    token = create_sdk_token(settings, "test")
    clock = ManualClock(START)
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://tender", timeout=60) as client,
    ):
        access = (await client.post("/api/v1/auth/refresh", json={"refresh_token": token})).json()
        client.headers["Authorization"] = f"Bearer {access['access_token']}"
        created = await client.post(
            "/api/v1/pipelines",
            data={
                "pipeline_name": "adder",
                "function_path": "src/add.py",
                "function_name": "add",
                "inputs[0][name]": "a",
                "inputs[0][data_type]": "number",
                "inputs[1][name]": "b",
                "inputs[1][data_type]": "number",
                "outputs[0][name]": "total",
                "outputs[0][data_type]": "number",
            },
            files={"step_file": ("code.tar.gz", tar_gz({"src/add.py": ADD}))},
        )
        assert created.status_code == 200, created.text
        for _ in range(120):  # each look holds a second: building the environment may take more
            ready = await client.get(
                "/api/v1/pipelines/adder", params={"wait_for_completion": "true"}
            )
            if ready.json()["creation_info"]["status"] != "creation_pending":
                break
        assert ready.json()["creation_info"]["status"] == "ready"
        yield App(client, clock, app.state.services)


async def _create_periodic(app: App, schedule: str, name: str = "every-minute") -> dict[str, Any]:
    answer = await app.client.post(
        "/api/v1/periodic-deployment",
        json={
            "pipeline_name": "adder",
            "name": name,
            "schedule": schedule,
            "inputs_mapping": [
                {"pipeline_input_name": "a", "constant_value": 1},
                {"pipeline_input_name": "b", "constant_value": 2},
            ],
            "outputs_mapping": [{"pipeline_output_name": "total", "is_null": True}],
        },
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _executions(app: App) -> list[dict[str, Any]]:
    answer = await app.client.get("/api/v1/pipelines/adder/executions")
    found: list[dict[str, Any]] = answer.json()
    return found


async def _finished(app: App) -> list[dict[str, Any]]:
    return [e for e in await _executions(app) if e["end_date"]]


def test_a_periodic_deployment_runs_on_schedule_and_is_recorded(tmp_path: Path) -> None:
    asyncio.run(_a_periodic_deployment_runs_on_schedule_and_is_recorded(tmp_path))


async def _a_periodic_deployment_runs_on_schedule_and_is_recorded(tmp_path: Path) -> None:
    async with serve(tmp_path / "data") as app:
        created = await _create_periodic(app, "* * * * *")
        assert created["status"] == "up"

        await app.clock.set(datetime(2026, 3, 1, 12, 1, 0, tzinfo=UTC))
        executions = await app.wait_for(lambda: _finished(app))

        assert len(executions) == 1
        execution = executions[0]
        assert execution["deployment_name"] == "every-minute"
        assert execution["status"] == "Succeeded"
        assert execution["created_at"] == "2026-03-01T12:01:00.000Z"
        detail = (await app.client.get(f"/api/v1/executions/{execution['execution_id']}")).json()
        assert detail["created_by"] == created["created_by"]
        assert [
            (i["pipeline_input_name"], i["mapping_type"], i["value"]) for i in detail["inputs"]
        ] == [
            ("a", "constant", 1),
            ("b", "constant", 2),
        ]
        assert detail["outputs"][0]["mapping_type"] == "is_null"
        latest = (await app.client.get("/api/v1/deployments/every-minute/executions/latest")).json()
        assert latest == {"execution_id": execution["execution_id"]}


def test_a_disabled_deployment_does_not_run_and_a_new_schedule_applies(tmp_path: Path) -> None:
    asyncio.run(_a_disabled_deployment_does_not_run_and_a_new_schedule_applies(tmp_path))


async def _a_disabled_deployment_does_not_run_and_a_new_schedule_applies(tmp_path: Path) -> None:
    async with serve(tmp_path / "data") as app:
        await _create_periodic(app, "* * * * *")
        disabled = await app.client.patch(
            "/api/v1/deployments/every-minute", json={"is_enabled": False}
        )
        assert disabled.json()["status"] == "disabled"

        await app.clock.set(datetime(2026, 3, 1, 12, 3, 0, tzinfo=UTC))
        await asyncio.sleep(1.5)  # two of the tracker's looks: nothing to find
        assert await _executions(app) == []

        rescheduled = await app.client.patch(
            "/api/v1/deployments/every-minute", json={"schedule": "30 12 * * *", "is_enabled": True}
        )
        assert rescheduled.json()["status"] == "up"
        await app.clock.set(datetime(2026, 3, 1, 12, 10, 0, tzinfo=UTC))
        await asyncio.sleep(1.5)
        assert await _executions(app) == []  # the old every-minute schedule is gone

        await app.clock.set(datetime(2026, 3, 1, 12, 30, 0, tzinfo=UTC))
        executions = await app.wait_for(lambda: _finished(app))
        assert [e["created_at"] for e in executions] == ["2026-03-01T12:30:00.000Z"]


def test_deleting_the_deployment_stops_its_schedule(tmp_path: Path) -> None:
    asyncio.run(_deleting_the_deployment_stops_its_schedule(tmp_path))


async def _deleting_the_deployment_stops_its_schedule(tmp_path: Path) -> None:
    async with serve(tmp_path / "data") as app:
        await _create_periodic(app, "* * * * *")
        assert (await app.client.delete("/api/v1/deployments/every-minute")).status_code == 200

        await app.clock.set(datetime(2026, 3, 1, 12, 5, 0, tzinfo=UTC))
        await asyncio.sleep(1.5)

        assert await _executions(app) == []


def test_an_impossible_schedule_is_refused_and_a_broken_one_holds_up_no_other(
    tmp_path: Path,
) -> None:
    asyncio.run(_an_impossible_schedule_is_refused_and_a_broken_one_holds_up_no_other(tmp_path))


async def _an_impossible_schedule_is_refused_and_a_broken_one_holds_up_no_other(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path / "data") as app:
        refused = await app.client.post(
            "/api/v1/periodic-deployment",
            json={
                "pipeline_name": "adder",
                "name": "february-30",
                "schedule": "0 0 30 2 *",
                "inputs_mapping": [
                    {"pipeline_input_name": "a", "constant_value": 1},
                    {"pipeline_input_name": "b", "constant_value": 2},
                ],
                "outputs_mapping": [{"pipeline_output_name": "total", "is_null": True}],
            },
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["additional_data"]["field"] == "deployment.schedule"
        assert "never fires" in refused.json()["message"]
        missing = await app.client.get("/api/v1/deployments/february-30")
        assert missing.status_code == 404

        # What an older tender accepted and kept: a CronWorkflow for 30 February.
        await _create_periodic(app, "0 0 * * *", name="a-broken")
        cron = await app.services.engine.get_cron_workflow("a-broken")
        cron.pop("status")
        cron["spec"]["schedules"] = ["0 0 30 2 *"]
        await app.services.engine.update_cron_workflow(cron)
        await _create_periodic(app, "* * * * *")

        await app.clock.set(datetime(2026, 3, 1, 12, 1, 0, tzinfo=UTC))
        executions = await app.wait_for(lambda: _finished(app))
        broken = (await app.client.get("/api/v1/deployments/a-broken")).json()
        healthy = (await app.client.get("/api/v1/deployments/every-minute")).json()

    assert [e["deployment_name"] for e in executions] == ["every-minute"]
    assert broken["status"] == "up"
    assert "0 0 30 2 *" in broken["schedule_error"]
    assert healthy["schedule_error"] is None
