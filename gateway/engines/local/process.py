"""A step's process: its own process group and working folder, stdout/stderr captured as
timestamped lines, the whole group killed on deadline, stop, or when the main process ends
(as Kubernetes kills a pod's other processes when its main container exits)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["LineSink", "ProcessOutcome", "run_process"]

LineSink = Callable[[str, str], None]  # (stream, line)
_DRAIN_SECONDS = (
    2.0  # after the group is killed, how long a pipe held by an escaped child may stay open
)


@dataclass(frozen=True)
class ProcessOutcome:
    pid: int
    exit_code: int  # 128 + signal number when a signal ended it, as in a container
    signal: int | None
    stopped_by: str | None  # "deadline" | "cancel" | None when it ended on its own
    stdout_tail: str
    started_at: datetime


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    deadline: float | None,
    cancel: asyncio.Event,
    on_line: LineSink,
    grace_seconds: float,
    stdout_limit: int,
    now: Callable[[], datetime],
    pass_fds: Sequence[int] = (),
) -> ProcessOutcome:
    """Run `argv` until it exits, `deadline` (loop time) passes or `cancel` is set; `pass_fds`
    stay open in the child (a low-latency worker's socket to the gateway).

    Raises OSError if the program cannot be started.
    """
    loop = asyncio.get_running_loop()
    tail = _Tail(stdout_limit)

    def on_stdout(line: str) -> None:
        tail.add(line)
        on_line("stdout", line)

    starting = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _StepProtocol(loop, on_stdout, lambda line: on_line("stderr", line)),
            *argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own session, hence its own process group (pgid == pid)
            pass_fds=pass_fds,
        )
    )
    try:
        # Shielded: a cancelled `subprocess_exec` can leave the new process running unkilled.
        transport, protocol = await asyncio.shield(starting)
    except asyncio.CancelledError:
        transport, protocol = await starting
        _kill_group(transport.get_pid(), signal.SIGKILL)
        transport.close()
        raise
    started_at = now()
    pid = transport.get_pid()
    try:
        stopped_by = await _wait(pid, protocol, deadline, cancel, grace_seconds)
    finally:
        _kill_group(pid, signal.SIGKILL)
        await _settle(protocol)
        code = transport.get_returncode()
        transport.close()
    code = -signal.SIGKILL if code is None else code
    sig = -code if code < 0 else None
    return ProcessOutcome(
        pid=pid,
        exit_code=128 + sig if sig is not None else code,
        signal=sig,
        stopped_by=stopped_by,
        stdout_tail=tail.text(),
        started_at=started_at,
    )


class _StepProtocol(asyncio.SubprocessProtocol):
    """Lines as they arrive, and two futures: the main process exited, all pipes closed.

    `Process.wait()` would also wait for the pipes, which a left-over background child can hold
    open; the group is only killed once the main process has exited, so both are needed.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_stdout: Callable[[str], None],
        on_stderr: Callable[[str], None],
    ) -> None:
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._sinks = {1: on_stdout, 2: on_stderr}
        self._pending = {1: b"", 2: b""}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        lines = (self._pending[fd] + data).split(b"\n")
        self._pending[fd] = lines.pop()
        for line in lines:
            self._sinks[fd](line.decode(errors="replace").rstrip("\r"))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self._pending:
            rest = self._pending.pop(fd)
            if rest:
                self._sinks[fd](rest.decode(errors="replace").rstrip("\r"))
        if not self._pending and not self.closed.done():
            self.closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _wait(
    pid: int,
    protocol: _StepProtocol,
    deadline: float | None,
    cancel: asyncio.Event,
    grace_seconds: float,
) -> str | None:
    cancelled = asyncio.create_task(cancel.wait())
    timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        waited: set[asyncio.Future[Any]] = {protocol.exited, cancelled}
        done, _ = await asyncio.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if protocol.exited in done:
        return None
    _kill_group(pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(protocol.exited), grace_seconds)
    except TimeoutError:
        _kill_group(pid, signal.SIGKILL)
        await protocol.exited
    return "cancel" if cancelled in done else "deadline"


async def _settle(protocol: _StepProtocol) -> None:
    """Wait for the exit and for the pipes, which a child that left the group may hold open."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(protocol.exited), _DRAIN_SECONDS)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(protocol.closed), _DRAIN_SECONDS)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Tail:
    """The last `limit` characters of stdout, kept line by line (Argo caps `result` at 256 kB)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lines: list[str] = []
        self._size = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        while self._size > self._limit and len(self._lines) > 1:
            self._size -= len(self._lines.pop(0)) + 1

    def text(self) -> str:
        return "\n".join(self._lines)[-self._limit :]
