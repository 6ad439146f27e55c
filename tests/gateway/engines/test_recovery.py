"""What an engine finds after a crash: process groups it may kill, and spooled log lines."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.engines.local.recovery import kill_leftover_groups, spooled_lines
from gateway.engines.local.spool import SPOOL_NAME, LogSpool
from gateway.store.records import LogLine, StepProcess


@pytest.fixture
def groups() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _sleeper(uid: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sh", "-c", "sleep 60 & wait"],
        env={"PATH": os.environ["PATH"], "ARGO_WORKFLOW_UID": uid},
        process_group=0,
    )


def _alive(process: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return process.poll() is None


def test_only_groups_still_running_their_step_are_killed(
    groups: list[subprocess.Popen[bytes]],
) -> None:
    ours, reused = _sleeper("uid-ours"), _sleeper("someone-else")
    groups += [ours, reused]
    now = datetime.now(UTC)
    recorded = [
        StepProcess("wf", "n1", "uid-ours", ours.pid, now),
        # The record says this group ran a step of "uid-gone": its id now belongs to another.
        StepProcess("wf", "n2", "uid-gone", reused.pid, now),
    ]
    assert kill_leftover_groups(recorded) == [ours.pid]
    ours.wait(timeout=10)
    assert not _alive(ours)
    assert _alive(reused)


def test_spooled_lines_are_read_back_cut_line_included(tmp_path: Path) -> None:
    node = tmp_path / "wf" / "node-1"
    node.mkdir(parents=True)
    spool = LogSpool(node / SPOOL_NAME, "pod-1")
    when = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    spool.write([LogLine("wf", "node-1", "pod-1", when, "stdout", "first\tline")])
    spool.write([LogLine("wf", "node-1", "pod-1", when, "stderr", "second")])
    spool.close()
    with (node / SPOOL_NAME).open("ab") as cut:
        cut.write(f"{when.timestamp():.6f}\tstdout\tcut sho".encode())
    lines = spooled_lines(tmp_path, "wf")
    assert [(line.stream, line.content) for line in lines] == [
        ("stdout", "first\tline"),
        ("stderr", "second"),
        ("stdout", "cut sho"),
    ]
    assert {line.pod_name for line in lines} == {"pod-1"}
    assert lines[0].timestamp == when
