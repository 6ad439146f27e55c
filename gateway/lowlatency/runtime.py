"""What one gateway process keeps for its low-latency deployments: the worker pods and the
pipeline each serves, the log lines they wrote that are not stored yet, and the records of the
calls in progress and of the latest ones that ended.

The records are those this process wrote to the store, kept so that reading a call back right
after it (the 303 to its results, the SDK's long-poll) costs no query, and so that whoever waits
for a call is woken when it ends, without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from compiler import Pipeline
from gateway.lowlatency.workers import LocalWorkers
from gateway.store.records import ExecutionRecord, WorkerLogLine
from gateway.store.worker_logs import WorkerLogRepository

__all__ = ["LowLatencyRuntime"]

_log = logging.getLogger("tender.lowlatency")
_FLUSH_S = 0.5
_KEPT_ENDED = 1024  # records of ended calls kept in memory


@dataclass
class _Call:
    record: ExecutionRecord
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class LowLatencyRuntime:
    def __init__(self, repository: WorkerLogRepository, *, start_timeout_s: float) -> None:
        self.log_lines = repository
        self.workers = LocalWorkers(self._add_line, start_timeout_s=start_timeout_s)
        self._lines: list[WorkerLogLine] = []
        self._writing = asyncio.Lock()  # lines reach the store in the order they were written
        self._calls: dict[str, _Call] = {}
        self._in_progress: Counter[str] = Counter()  # calls by deployment
        self._ended: OrderedDict[str, ExecutionRecord] = OrderedDict()
        self._pipelines: dict[str, Pipeline] = {}
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

    def serve(self, deployment: str, pipeline: Pipeline | None) -> None:
        """Remember which pipeline a deployment's workers serve (None: they stopped). A
        pipeline never changes once created, and cannot go while it is deployed."""
        if pipeline is None:
            self._pipelines.pop(deployment, None)
        else:
            self._pipelines[deployment] = pipeline

    def pipeline(self, deployment: str) -> Pipeline | None:
        return self._pipelines.get(deployment)

    def begin_call(self, record: ExecutionRecord) -> None:
        self._calls[record.id] = _Call(record)
        self._in_progress[record.deployment_name or ""] += 1

    def calls_in_progress(self, deployment: str) -> int:
        """Calls of the deployment this process started and that have not ended."""
        return self._in_progress[deployment]

    def end_call(self, execution_id: str, record: ExecutionRecord | None) -> None:
        """The call ended with this record (None: its end could not be stored)."""
        call = self._calls.pop(execution_id, None)
        if record is not None:
            self._ended[execution_id] = record
            while len(self._ended) > _KEPT_ENDED:
                self._ended.popitem(last=False)
        if call is not None:
            deployment = call.record.deployment_name or ""
            self._in_progress[deployment] -= 1
            if self._in_progress[deployment] <= 0:
                del self._in_progress[deployment]
            call.ended.set()

    def forget(self, execution_id: str) -> None:
        self._ended.pop(execution_id, None)

    def record(self, execution_id: str) -> ExecutionRecord | None:
        """The record of a call this process holds or ended lately, as stored."""
        call = self._calls.get(execution_id)
        return call.record if call is not None else self._ended.get(execution_id)

    async def wait_call(self, execution_id: str, timeout_s: float) -> None:
        """Return when the call ended (its record is final), or after ``timeout_s``."""
        call = self._calls.get(execution_id)
        if call is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.ended.wait(), timeout_s)
