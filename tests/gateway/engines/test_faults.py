"""Bad input and faults: nothing may stay Running and no step process may survive."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from gateway.engines.errors import ManifestInvalidError, ManifestRefusedError
from gateway.engines.local import LocalEngine
from gateway.store import Database, WorkflowRepository
from tests.gateway.engines.engine_manifests import EngineFactory, live_processes, sh, workflow


async def _wait_for_phase(engine: LocalEngine, name: str, phases: set[str]) -> dict[str, object]:
    """Wait until a pod of `name` is in one of `phases` (and its process exists if Running)."""
    for _ in range(500):
        found = await engine.get_workflow(name)
        nodes = found["status"]["nodes"].values()
        if any(node["phase"] in phases and node["type"] == "Pod" for node in nodes):
            if "Running" in phases:
                await _pid_of(name)
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no pod of {name} reached {phases}")


async def _pid_of(name: str) -> int:
    for _ in range(500):
        if pids := live_processes(name):
            return min(pids)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no process for {name}")


async def test_non_zero_exit_fails_the_node_and_skips_dependents(
    open_engine: EngineFactory,
) -> None:
    manifest = workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "boom", "template": "boom"},
                        {"name": "after", "template": "ok", "depends": "boom"},
                    ]
                },
            },
            sh("boom", "echo about to fail; exit 3"),
            sh("ok", "echo never"),
        ],
        metadata={"name": "nonzero"},
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("nonzero")
        logs = await engine.workflow_logs("nonzero")
    nodes = {n["displayName"]: n for n in done["status"]["nodes"].values()}
    assert nodes["boom"]["phase"] == "Failed"
    assert nodes["boom"]["message"] == "Error (exit code 3)"
    assert nodes["boom"]["outputs"]["exitCode"] == "3"
    assert nodes["after"]["phase"] == "Omitted"
    assert done["status"]["phase"] == "Failed"
    assert [entry["content"] for entry in logs] == ["about to fail"]


async def test_template_deadline(open_engine: EngineFactory) -> None:
    manifest = workflow(
        [sh("main", "sleep 30", activeDeadlineSeconds=1)], metadata={"name": "slow"}
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("slow")
    node = done["status"]["nodes"]["slow"]
    assert node["phase"] == "Failed"
    assert node["message"] == "Pod was active on the node longer than the specified deadline"
    assert done["status"]["phase"] == "Failed"
    assert live_processes("slow") == []


async def test_workflow_deadline_runs_the_exit_handler(open_engine: EngineFactory) -> None:
    manifest = workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "sleep", "template": "sleep"}],
                    [{"name": "never", "template": "bye"}],
                ],
            },
            sh("sleep", "sleep 30"),
            sh("bye", "echo {{workflow.status}}"),
        ],
        activeDeadlineSeconds=1,
        onExit="bye",
        metadata={"name": "overdue"},
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("overdue")
    status = done["status"]
    nodes = {n["displayName"]: n for n in status["nodes"].values()}
    assert status["phase"] == "Failed"
    assert status["message"] == "Max duration limit exceeded"
    assert nodes["sleep"]["phase"] == "Failed"
    assert nodes["sleep"]["message"] == "Step exceeded its deadline"
    assert "never" not in nodes
    assert nodes["overdue.onExit"]["outputs"]["result"] == "Failed"
    assert live_processes("overdue") == []


async def test_output_parameter_over_the_limit(open_engine: EngineFactory) -> None:
    step = sh(
        "main",
        "head -c 2048 /dev/zero > /tmp/big",
        outputs={"parameters": [{"name": "big", "valueFrom": {"path": "/tmp/big"}}]},
    )
    async with open_engine(max_output_parameter_bytes=1024) as engine:
        await engine.submit_workflow(workflow([step], metadata={"name": "big"}))
        done = await engine.wait_for_workflow("big")
    node = done["status"]["nodes"]["big"]
    assert node["phase"] == "Failed"
    assert node["message"] == (
        "output parameter 'big' is 2048 bytes, more than the limit of 1024 bytes; "
        "use an artifact for large outputs"
    )
    assert done["status"]["phase"] == "Failed"


async def test_missing_output_file_without_default_is_an_error(
    open_engine: EngineFactory,
) -> None:
    step = sh(
        "main", "true", outputs={"parameters": [{"name": "x", "valueFrom": {"path": "/tmp/none"}}]}
    )
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([step], metadata={"name": "nofile"}))
        done = await engine.wait_for_workflow("nofile")
    assert done["status"]["nodes"]["nofile"]["phase"] == "Error"
    assert "/tmp/none: no such file or directory" in done["status"]["nodes"]["nofile"]["message"]


@pytest.mark.parametrize(
    ("path", "value", "error", "message"),
    [
        (
            ["spec", "templates", 0, "volumes"],
            [],
            ManifestRefusedError,
            "spec.templates[0].volumes is not supported by the local engine",
        ),
        (
            ["spec", "templates", 0, "container", "volumeMounts"],
            [],
            ManifestRefusedError,
            "spec.templates[0].container.volumeMounts is not supported by the local engine",
        ),
        (
            ["spec", "podGC"],
            {"strategy": "OnPodSuccess"},
            ManifestRefusedError,
            "spec.podGC is not supported by the local engine",
        ),
        (
            ["spec", "templates"],
            {"not": "a list"},
            ManifestInvalidError,
            "spec.templates must be a list",
        ),
        (["kind"], "Pod", ManifestInvalidError, "kind must be Workflow"),
        (
            ["spec", "templates", 0, "container", "args"],
            ["{{=sprig.trim('x')}}"],
            ManifestRefusedError,
            "spec.templates[0].container.args[0] uses an expression tag",
        ),
    ],
)
async def test_unsupported_or_invalid_manifests_are_refused(
    open_engine: EngineFactory,
    path: list[str | int],
    value: object,
    error: type[Exception],
    message: str,
) -> None:
    manifest = workflow([sh("main", "true")])
    target: dict = manifest  # type: ignore[type-arg]
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    async with open_engine() as engine:
        with pytest.raises(error) as raised:
            await engine.submit_workflow(manifest)
        assert await engine.list_workflows() == []
    assert str(raised.value).startswith(message)


async def test_a_process_killed_from_outside_is_an_error(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", "sleep 30")], metadata={"name": "kill"}))
        await _wait_for_phase(engine, "kill", {"Running"})
        os.kill(await _pid_of("kill"), signal.SIGKILL)
        done = await engine.wait_for_workflow("kill")
    node = done["status"]["nodes"]["kill"]
    assert node["phase"] == "Error"
    assert node["message"] == "process killed by SIGKILL (exit code 137)"
    assert done["status"]["phase"] == "Error"
    assert live_processes("kill") == []


async def test_stop_kills_the_process_group_and_fails_the_workflow(
    open_engine: EngineFactory,
) -> None:
    # a background child in the same group must die too; trap makes SIGTERM insufficient
    script = "trap '' TERM; sleep 30 & sleep 30"
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", script)], metadata={"name": "stop"}))
        await _wait_for_phase(engine, "stop", {"Running"})
        await _pid_of("stop")
        await engine.stop_workflow("stop")
        done = await engine.wait_for_workflow("stop")
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["message"] == "Stopped with strategy 'Stop'"
    assert done["spec"]["shutdown"] == "Stop"
    assert done["status"]["nodes"]["stop"]["phase"] == "Failed"
    assert live_processes("stop") == []


async def test_a_finished_step_leaves_no_background_child(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(
            workflow([sh("main", "sleep 30 & echo started")], metadata={"name": "bg"})
        )
        done = await engine.wait_for_workflow("bg")
    assert done["status"]["phase"] == "Succeeded"
    assert live_processes("bg") == []


async def test_restart_marks_running_workflows_as_error(
    open_engine: EngineFactory, sqlite_db: Database
) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", "sleep 30")], metadata={"name": "crash"}))
        await _wait_for_phase(engine, "crash", {"Running"})
        # simulate a crash: the store keeps saying Running although the engine is gone
        record = WorkflowRepository(sqlite_db).get("crash")
    assert live_processes("crash") == []
    assert record is not None
    WorkflowRepository(sqlite_db).save(
        type(record)(
            **{
                **record.__dict__,
                "phase": "Running",
                "status": {**record.status, "phase": "Running"},
            }
        )
    )
    async with open_engine() as engine:
        recovered = await engine.get_workflow("crash")
    assert recovered["status"]["phase"] == "Error"
    assert recovered["status"]["message"] == (
        "the local engine restarted while the workflow was running"
    )
    assert recovered["status"]["finishedAt"] is not None
    assert all(n["phase"] == "Error" for n in recovered["status"]["nodes"].values())


async def test_close_ends_running_workflows_in_error(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", "sleep 30")], metadata={"name": "bye"}))
        await _wait_for_phase(engine, "bye", {"Running"})
    assert live_processes("bye") == []
    async with open_engine() as engine:
        closed = await engine.get_workflow("bye")
    assert closed["status"]["phase"] == "Error"
    assert closed["status"]["message"] == (
        "the local engine was shut down while the workflow was running"
    )


async def test_close_kills_the_steps_of_a_running_dag(open_engine: EngineFactory) -> None:
    manifest = workflow(
        [
            {"name": "main", "dag": {"tasks": [{"name": "a", "template": "sleep"}]}},
            sh("sleep", "sleep 30"),
        ],
        metadata={"name": "dag-bye"},
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        await _wait_for_phase(engine, "dag-bye", {"Running"})
        await engine.close()  # while the engine's loop still runs: nothing else cancels tasks
        assert live_processes("dag-bye") == []
        closed = await engine.get_workflow("dag-bye")
    assert closed["status"]["phase"] == "Error"


async def test_concurrency_bound_keeps_later_workflows_pending(
    open_engine: EngineFactory, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wait = f"while [ ! -e {gate} ]; do sleep 0.02; done"
    async with open_engine(max_workflows=1) as engine:
        await engine.submit_workflow(workflow([sh("main", wait)], metadata={"name": "first"}))
        await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "second"}))
        await _wait_for_phase(engine, "first", {"Running"})
        second = await engine.get_workflow("second")
        listed = await engine.list_workflows("workflows.argoproj.io/phase=Pending")
        gate.touch()
        first_done = await engine.wait_for_workflow("first")
        second_done = await engine.wait_for_workflow("second")
    assert second["status"]["phase"] == "Pending"
    assert second["status"]["nodes"] == {}
    assert [w["metadata"]["name"] for w in listed] == ["second"]
    assert first_done["status"]["phase"] == second_done["status"]["phase"] == "Succeeded"
    assert first_done["status"]["finishedAt"] <= second_done["status"]["startedAt"]


async def test_pending_workflows_survive_a_restart(
    open_engine: EngineFactory, tmp_path: Path
) -> None:
    async with open_engine(max_workflows=1) as engine:
        await engine.submit_workflow(workflow([sh("main", "sleep 30")], metadata={"name": "hog"}))
        await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "queued"}))
        await _wait_for_phase(engine, "hog", {"Running"})
    async with open_engine() as engine:
        done = await engine.wait_for_workflow("queued")
    assert done["status"]["phase"] == "Succeeded"


async def test_stopping_a_pending_workflow(open_engine: EngineFactory) -> None:
    async with open_engine(max_workflows=1) as engine:
        await engine.submit_workflow(workflow([sh("main", "sleep 30")], metadata={"name": "hog"}))
        await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "waits"}))
        await engine.stop_workflow("waits")
        waits = await engine.wait_for_workflow("waits")
        await engine.stop_workflow("hog")
        await engine.wait_for_workflow("hog")
    assert waits["status"]["phase"] == "Failed"
    assert waits["status"]["message"] == "Stopped with strategy 'Stop'"
    assert waits["status"]["nodes"] == {}
