"""A step's process: its own process group and working folder, stdout/stderr captured as
timestamped lines, the whole group killed on deadline, stop, or when the main process ends
(as Kubernetes kills a pod's other processes when its main container exits).

The event loop never waits for the operating system here: the process is started from a worker
thread (`fork_exec` drops the GIL while the kernel creates it), its exit arrives on a pidfd the
loop watches (a thread per process where Linux has no pidfd), and its output through non-blocking
pipes. Steps run at a lower CPU priority (`nice`) than the gateway, so that busy steps slow down
each other, not the HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["LineSink", "ProcessOutcome", "run_process"]

LineSink = Callable[[str, list[str]], None]  # (stream, the lines of one read)
# After the group is killed, how long a pipe held by a child that left the group may stay open.
_DRAIN_SECONDS = 2.0


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
    on_lines: LineSink,
    grace_seconds: float,
    stdout_limit: int,
    now: Callable[[], datetime],
    pass_fds: Sequence[int] = (),
    nice: int = 0,
    on_started: Callable[[int, datetime], None] | None = None,
) -> ProcessOutcome:
    """Run `argv` until it exits, `deadline` (loop time) passes or `cancel` is set; `pass_fds`
    stay open in the child (a low-latency worker's socket to the gateway).

    `on_started(pgid, started_at)` is called once the process exists. Raises OSError if the
    program cannot be started.
    """
    loop = asyncio.get_running_loop()
    tail = _Tail(stdout_limit)

    def on_stdout(lines: list[str]) -> None:
        tail.add(lines)
        on_lines("stdout", lines)

    spawning = loop.run_in_executor(None, _spawn, list(argv), cwd, env, nice, tuple(pass_fds))
    try:
        # Shielded: a cancelled start can leave the new process running unkilled.
        spawned = await asyncio.shield(spawning)
    except asyncio.CancelledError:
        with contextlib.suppress(OSError):
            spawned = await spawning
            _kill_group(spawned.process.pid, signal.SIGKILL)
            await asyncio.to_thread(_reap, spawned)
        raise
    started_at = now()
    process, pid = spawned.process, spawned.process.pid
    readers = [
        _Reader(loop, spawned.stdout, on_stdout),
        _Reader(loop, spawned.stderr, lambda lines: on_lines("stderr", lines)),
    ]
    exited = _exit_future(loop, process)
    try:
        if on_started is not None:
            on_started(pid, started_at)
        stopped_by = await _wait(pid, exited, deadline, cancel, grace_seconds)
    finally:
        _kill_group(pid, signal.SIGKILL)
        await asyncio.shield(_settle(exited, readers))
    code = process.returncode
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


@dataclass(frozen=True)
class _Spawned:
    process: subprocess.Popen[bytes]
    stdout: int  # the read ends of its output pipes, owned by the engine
    stderr: int


def _spawn(
    argv: list[str], cwd: Path, env: dict[str, str], nice: int, pass_fds: tuple[int, ...]
) -> _Spawned:
    stdout, stdout_w = os.pipe()
    stderr, stderr_w = os.pipe()
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout_w,
            stderr=stderr_w,
            process_group=0,  # its own process group (pgid == pid), killed as a whole
            pass_fds=pass_fds,
        )
    except BaseException:
        os.close(stdout)
        os.close(stderr)
        raise
    finally:
        os.close(stdout_w)
        os.close(stderr_w)
    if nice:
        # Before the step's interpreter can start anything: its children inherit the value.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, process.pid, nice)
    return _Spawned(process, stdout, stderr)


def _reap(spawned: _Spawned) -> None:
    spawned.process.wait()
    os.close(spawned.stdout)
    os.close(spawned.stderr)


def _exit_future(
    loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes]
) -> asyncio.Future[None]:
    """A future set once the main process exited and was reaped."""
    exited: asyncio.Future[None] = loop.create_future()

    def done() -> None:
        if not exited.done():
            exited.set_result(None)

    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd (Linux < 5.3, other systems): a thread waits
        threading.Thread(
            target=lambda: (process.wait(), loop.call_soon_threadsafe(done)), daemon=True
        ).start()
        return exited

    def readable() -> None:
        if process.poll() is not None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            done()

    loop.add_reader(pidfd, readable)
    return exited


class _Reader:
    """Lines of one pipe as they arrive, read by the loop from the pipe's non-blocking end.

    The engine owns the descriptor and closes it once; a file object around it would be closed a
    second time by some event loops' pipe transports (uvloop's).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, sink: Callable[[list[str]], None]
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._sink = sink
        self._pending = b""
        self.closed: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        if lines:
            self._sink([line.decode(errors="replace").rstrip("\r") for line in lines])

    def close(self) -> None:
        if self.closed.done():
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        if self._pending:
            self._sink([self._pending.decode(errors="replace").rstrip("\r")])
            self._pending = b""
        self.closed.set_result(None)


async def _wait(
    pgid: int,
    exited: asyncio.Future[None],
    deadline: float | None,
    cancel: asyncio.Event,
    grace_seconds: float,
) -> str | None:
    cancelled = asyncio.create_task(cancel.wait())
    timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        waited: set[asyncio.Future[Any]] = {exited, cancelled}
        done, _ = await asyncio.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if exited in done:
        return None
    _kill_group(pgid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(exited), grace_seconds)
    except TimeoutError:
        _kill_group(pgid, signal.SIGKILL)
        await exited
    return "cancel" if cancelled in done else "deadline"


async def _settle(exited: asyncio.Future[None], readers: list[_Reader]) -> None:
    """Wait for the exit (the group was killed) and read the pipes to the end, which a child
    that left the group may hold open for a while."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(exited), _DRAIN_SECONDS)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(asyncio.shield(r.closed) for r in readers)), _DRAIN_SECONDS
        )
    for reader in readers:
        reader.close()


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Tail:
    """The last `limit` characters of stdout, kept line by line (Argo caps `result` at 256 kB)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lines: deque[str] = deque()
        self._size = 0

    def add(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._lines.append(line)
            self._size += len(line) + 1
        while self._size > self._limit and len(self._lines) > 1:
            self._size -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self._lines)[-self._limit :]
