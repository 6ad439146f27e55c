"""What an engine finds on start after another one stopped without cleaning up (`kill -9`):
step processes still running, log lines only in their spool files, work folders.

A recorded process group is killed only if one of its members still carries the environment of
the step it was recorded for (`ARGO_WORKFLOW_UID`): process ids are reused, and a group id that
now belongs to someone else's process must be left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from gateway.engines.local.context import WorkflowRun
from gateway.engines.local.spool import SPOOL_NAME, read_spool
from gateway.store import Database, StepProcessRepository
from gateway.store.records import LogLine, StepProcess

__all__ = ["ProcessBook", "kill_leftover_groups", "remove_work_dirs", "spooled_lines"]

_PROC = Path("/proc")
_GONE_TIMEOUT_S = 5.0


class ProcessBook:
    """Records each step's process group in the store while it runs, for `kill_leftover_groups`
    after a crash. Nobody waits for these writes: the writer thread keeps their order. The
    records of a Workflow go with its final status (`WorkflowRepository.save_statuses`): a group
    whose step ended is dead, and only groups still running their step are killed."""

    def __init__(self, db: Database, repository: StepProcessRepository) -> None:
        self._db = db
        self._repository = repository

    def started(self, run: WorkflowRun, node_id: str, pgid: int, started_at: datetime) -> None:
        uid = str(run.workflow["metadata"]["uid"])
        self._db.writer.post(
            self._repository.add, StepProcess(run.name, node_id, uid, pgid, started_at)
        )


def kill_leftover_groups(processes: Iterable[StepProcess]) -> list[int]:
    """SIGKILL the recorded groups that still hold their step's processes, wait until they are
    gone, and return their ids."""
    wanted = {p.pgid: f"ARGO_WORKFLOW_UID={p.workflow_uid}".encode() for p in processes}
    if not wanted:
        return []
    if not _PROC.is_dir():  # no way to check who owns a group: trust the record
        killed = [pgid for pgid in wanted if _kill(pgid)]
    else:
        members = _members(set(wanted))
        killed = [
            pgid
            for pgid, pids in members.items()
            if any(_has_marker(pid, wanted[pgid]) for pid in pids) and _kill(pgid)
        ]
    deadline = time.monotonic() + _GONE_TIMEOUT_S
    while killed and _PROC.is_dir() and time.monotonic() < deadline and _members(set(killed)):
        time.sleep(0.02)
    return killed


def spooled_lines(work_dir: Path, workflow_name: str) -> list[LogLine]:
    """The log lines the steps of `workflow_name` wrote, read back from their spool files."""
    lines: list[LogLine] = []
    folder = work_dir / workflow_name
    if not folder.is_dir():
        return lines
    for node_dir in sorted(folder.iterdir()):
        spool = node_dir / SPOOL_NAME
        if spool.is_file():
            with contextlib.suppress(OSError):
                lines.extend(read_spool(spool, workflow_name, node_dir.name))
    lines.sort(key=lambda line: line.timestamp)
    return lines


def remove_work_dirs(work_dir: Path) -> None:
    if work_dir.is_dir():
        for entry in work_dir.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


def _kill(pgid: int) -> bool:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _members(pgids: set[int]) -> dict[int, list[int]]:
    """Live (not zombie) processes of each group, from /proc/<pid>/stat."""
    found: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp in pgids and state != "Z":
            found.setdefault(pgrp, []).append(int(entry.name))
    return found


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")
