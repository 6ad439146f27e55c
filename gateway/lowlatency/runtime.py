"""What one gateway process keeps for its low-latency deployments: the worker pods, the log
lines they wrote that are not stored yet, and the calls in progress (so that whoever waits for
one is woken when it ends, without polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from gateway.lowlatency.workers import LocalWorkers
from gateway.store.records import WorkerLogLine
from gateway.store.worker_logs import WorkerLogRepository

__all__ = ["LowLatencyRuntime"]

_log = logging.getLogger("tender.lowlatency")
_FLUSH_S = 0.5


class LowLatencyRuntime:
    def __init__(self, repository: WorkerLogRepository, *, start_timeout_s: float) -> None:
        self.log_lines = repository
        self.workers = LocalWorkers(self._add_line, start_timeout_s=start_timeout_s)
        self._lines: list[WorkerLogLine] = []
        self._writing = asyncio.Lock()  # lines reach the store in the order they were written
        self._calls: dict[str, asyncio.Event] = {}
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_regularly())

    async def close(self) -> None:
        await self.workers.close()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.flush()

    def _add_line(self, line: WorkerLogLine) -> None:
        self._lines.append(line)

    async def flush(self) -> None:
        async with self._writing:
            lines, self._lines = self._lines, []
            await asyncio.to_thread(self.log_lines.append, lines)

    async def write_with_lines(self, write: Callable[[Sequence[WorkerLogLine]], None]) -> None:
        """Run ``write`` (a store call) with every line not stored yet, in one transaction."""
        async with self._writing:
            lines, self._lines = self._lines, []
            await asyncio.to_thread(write, lines)

    async def _flush_regularly(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_S)
            try:
                await self.flush()
            except Exception:
                _log.exception("storing the workers' log lines failed")

    def begin_call(self, execution_id: str) -> None:
        self._calls[execution_id] = asyncio.Event()

    def end_call(self, execution_id: str) -> None:
        ended = self._calls.pop(execution_id, None)
        if ended is not None:
            ended.set()

    async def wait_call(self, execution_id: str, timeout_s: float) -> None:
        """Return when the call ended (its record is final), or after ``timeout_s``."""
        ended = self._calls.get(execution_id)
        if ended is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), timeout_s)
