"""The embedded engine's worker pods, with real worker processes: which pod serves a call,
what a call gets when its pod ends, restarts, start failures, stopping."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.engines.local.settings import default_base_env
from gateway.lowlatency.errors import WorkerLostError, WorkersStoppedError, WorkerStartError
from gateway.lowlatency.pods import RUNNING, CallOutcome, WorkerCall, WorkerSpec
from gateway.lowlatency.workers import LocalWorkers
from gateway.store.records import WorkerLogLine

CODE = """
import os
import time

if os.path.exists("slow-import"):
    time.sleep(30)


def hold(release):
    while not os.path.exists(release):
        time.sleep(0.01)
    return {"pid": os.getpid()}


def leave(code):
    os._exit(code)
"""


def _spec(tmp_path: Path, function: str, **changes: Any) -> WorkerSpec:
    code_dir = tmp_path / "code"
    code_dir.mkdir(exist_ok=True)
    (code_dir / "f.py").write_text(textwrap.dedent(CODE), encoding="utf-8")
    fields: dict[str, Any] = {
        "deployment": "d",
        "python": sys.executable,
        "code_dir": code_dir,
        "function_path": "f.py",
        "function_name": function,
        "outputs": [{"name": "pid", "data_type": "number"}],
        "max_value_bytes": 60000,
        "parallel": 1,
        "memory_limit_bytes": None,
        "env": default_base_env(),
        "pods": 1,
        "work_dir": tmp_path / "pods",
        **changes,
    }
    return WorkerSpec(**fields)


def _run(
    test: Callable[[LocalWorkers, list[WorkerLogLine]], Awaitable[None]],
    start_timeout_s: float = 20,
) -> None:
    async def main() -> None:
        lines: list[WorkerLogLine] = []
        workers = LocalWorkers(lines.append, start_timeout_s=start_timeout_s)
        try:
            await asyncio.wait_for(test(workers, lines), 60)
        finally:
            await workers.close()

    asyncio.run(main())


def _text(name: str, value: Any) -> dict[str, Any]:
    encoded = json.dumps(value)
    return {"name": name, "data_type": "string", "env": "X", "encoding": "json", "text": encoded}


def _call(workers: LocalWorkers, call_id: str, release: Path, tmp_path: Path) -> Any:
    call = WorkerCall(call_id, [_text("release", str(release))], tmp_path / call_id, {})
    return asyncio.ensure_future(workers.call("d", call))


def _worker_pid() -> int:
    """The one worker process this test started (a child of this process)."""
    found = subprocess.run(
        ["pgrep", "-P", str(os.getpid()), "-f", "worker.py"],
        capture_output=True,
        text=True,
        check=True,
    )
    [pid] = found.stdout.split()
    return int(pid)


async def _until(probe: Callable[[], bool]) -> None:
    while not probe():
        await asyncio.sleep(0.01)


def _pid(outcome: CallOutcome) -> int:
    return int(outcome.values["pid"])


def test_calls_go_to_the_least_busy_pod_and_wait_for_a_free_slot(tmp_path: Path) -> None:
    async def test(workers: LocalWorkers, lines: list[WorkerLogLine]) -> None:
        await workers.start(_spec(tmp_path, "hold", pods=2, parallel=1))
        first_release, third_release = tmp_path / "first", tmp_path / "third"
        first = _call(workers, "c1", first_release, tmp_path)
        second = _call(workers, "c2", tmp_path / "second", tmp_path)
        third = _call(workers, "c3", third_release, tmp_path)
        (tmp_path / "second").touch()
        third_release.touch()
        second_pid = _pid(await second)
        third_pid = _pid(await third)  # waited for c2's slot: c1 holds the other pod
        first_release.touch()
        first_pid = _pid(await first)
        assert first_pid != second_pid
        assert third_pid == second_pid

    _run(test)


def test_a_pod_that_ends_fails_its_calls_and_starts_again(tmp_path: Path) -> None:
    async def test(workers: LocalWorkers, lines: list[WorkerLogLine]) -> None:
        await workers.start(_spec(tmp_path, "hold", parallel=2))
        release = tmp_path / "release"
        held = [_call(workers, f"c{n}", release, tmp_path) for n in range(2)]
        await asyncio.sleep(0.2)
        pid = _worker_pid()
        os.kill(pid, signal.SIGKILL)
        for call in held:
            with pytest.raises(WorkerLostError, match=r"killed by SIGKILL, exit code 137"):
                await call
        await _until(lambda: [p["status"] for p in workers.pods("d")] == [RUNNING])
        release.touch()
        assert _pid(await _call(workers, "after", release, tmp_path)) != pid
        assert lines[-1].content.startswith("tender: the worker ended (killed by SIGKILL")

    _run(test)


def test_a_call_that_ends_its_worker_gets_the_exit_code(tmp_path: Path) -> None:
    async def test(workers: LocalWorkers, lines: list[WorkerLogLine]) -> None:
        await workers.start(_spec(tmp_path, "leave"))
        number = {"name": "code", "data_type": "number", "env": "X", "encoding": "json"}
        with pytest.raises(WorkerLostError, match=r"\(exit code 3\); it is being started again"):
            await workers.call("d", WorkerCall("c1", [{**number, "text": "3"}], tmp_path, {}))

    _run(test)


@pytest.mark.parametrize(
    ("function", "slow", "timeout", "message"),
    [
        ("missing", False, 20, "'f.py' has no function named 'missing'"),
        ("hold", True, 2, "the worker was not ready within 2 s"),
    ],
)
def test_a_worker_that_cannot_start_fails_the_start(
    tmp_path: Path, function: str, slow: bool, timeout: float, message: str
) -> None:
    spec = _spec(tmp_path, function)
    if slow:
        (spec.code_dir / "slow-import").touch()  # the worker's module sleeps at import

    async def test(workers: LocalWorkers, lines: list[WorkerLogLine]) -> None:
        with pytest.raises(WorkerStartError) as failed:
            await workers.start(spec)
        assert str(failed.value) == message
        assert workers.pods("d") == []
        assert lines[-1].content == f"tender: the worker could not start: {message}"
        with pytest.raises(WorkersStoppedError):
            await workers.call("d", WorkerCall("c1", [], tmp_path / "c1", {}))

    _run(test, start_timeout_s=timeout)


def test_stopping_fails_the_calls_in_progress(tmp_path: Path) -> None:
    async def test(workers: LocalWorkers, lines: list[WorkerLogLine]) -> None:
        await workers.start(_spec(tmp_path, "hold"))
        held = _call(workers, "c1", tmp_path / "never", tmp_path)
        await asyncio.sleep(0.2)
        await workers.stop("d", "the deployment was deleted")
        with pytest.raises(WorkersStoppedError, match="the deployment was deleted while the call"):
            await held
        assert workers.pods("d") == []

    _run(test)
