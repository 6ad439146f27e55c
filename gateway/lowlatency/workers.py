"""Warm workers for low-latency deployments on the embedded engine: start, call, restart, stop.

A deployment's pods (``pods.Pod``: a worker process each) serve ``parallel`` calls at once.
Calls wait in the gateway for a free slot on a running pod, the least busy first. A pod whose
process ends is started again: at once the first time, then after 1, 2, 4... up to 30 s while
it keeps ending within a minute (as Kubernetes backs off a crashing container); the calls it
held fail with ``WorkerLostError``.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.engines.local.objects import generate_name
from gateway.lowlatency.errors import WorkersStoppedError, WorkerStartError
from gateway.lowlatency.pods import (
    FAILED,
    PENDING,
    RUNNING,
    CallOutcome,
    LogSink,
    Pod,
    WorkerCall,
    WorkerSpec,
    describe,
)

__all__ = ["LocalWorkers"]

_STEADY_S = 60.0  # a worker that ran this long before ending is restarted at once
_MAX_BACKOFF_S = 30.0


class LocalWorkers:
    """The worker pods of every low-latency deployment of one gateway process."""

    def __init__(self, sink: LogSink, *, start_timeout_s: float) -> None:
        self._sink = sink
        self._start_timeout_s = start_timeout_s
        self._groups: dict[str, _Group] = {}

    async def start(self, spec: WorkerSpec) -> None:
        """Start the deployment's pods and return once all are ready. Raises WorkerStartError
        (the pods stopped) if one could not start."""
        await self.stop(spec.deployment)
        group = _Group(spec, self._sink, self._start_timeout_s)
        self._groups[spec.deployment] = group
        try:
            await group.start()
        except BaseException:
            if self._groups.get(spec.deployment) is group:
                del self._groups[spec.deployment]
            await group.stop("the workers could not start")
            raise

    async def stop(self, deployment: str, reason: str = "the deployment's workers stopped") -> None:
        """Stop the pods; the calls they hold fail with ``reason``."""
        group = self._groups.pop(deployment, None)
        if group is not None:
            await group.stop(reason)

    async def close(self) -> None:
        for name in list(self._groups):
            await self.stop(name, "the gateway stopped")

    def pods(self, deployment: str) -> list[dict[str, str]]:
        group = self._groups.get(deployment)
        return [] if group is None else [p.view() for p in group.pods]

    async def call(self, deployment: str, call: WorkerCall) -> CallOutcome:
        """Run one call on the least busy running pod, once one has a free slot."""
        group = self._groups.get(deployment)
        if group is None:
            raise WorkersStoppedError(f"deployment {deployment!r} has no workers running")
        return await group.call(call)


class _Group:
    """The pods of one deployment."""

    def __init__(self, spec: WorkerSpec, sink: LogSink, start_timeout_s: float) -> None:
        self.spec = spec
        self.sink = sink
        self.start_timeout_s = start_timeout_s
        self.pods = [
            Pod(
                generate_name(f"{spec.deployment}-"),
                spec,
                sink,
                start_timeout_s=start_timeout_s,
                changed=self.notify,
            )
            for _ in range(spec.pods)
        ]
        self.changed = asyncio.Condition()
        self.stopped: str | None = None  # why, once stopped
        self.failure: str | None = None  # why the last start failed
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ready: list[asyncio.Future[None]] = [loop.create_future() for _ in self.pods]
        self._tasks = [
            loop.create_task(self._keep_running(pod, first))
            for pod, first in zip(self.pods, ready, strict=True)
        ]
        for result in await asyncio.gather(*ready, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result

    async def stop(self, reason: str) -> None:
        self.stopped = reason
        for pod in self.pods:
            pod.terminate(reason)
        await self.notify()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def notify(self) -> None:
        """A pod's status changed or a slot freed up: callers waiting look again."""
        if any(pod.status == RUNNING for pod in self.pods):
            self.failure = None
        async with self.changed:
            self.changed.notify_all()

    async def call(self, call: WorkerCall) -> CallOutcome:
        async with self.changed:
            while True:
                if self.stopped is not None:
                    raise WorkersStoppedError(self.stopped)
                free = [pod for pod in self.pods if pod.free_slots > 0]
                if free:
                    pod = max(free, key=lambda p: p.free_slots)
                    break
                if self.failure is not None and not any(p.status == RUNNING for p in self.pods):
                    raise WorkerStartError(f"no worker is running: {self.failure}")
                await self.changed.wait()
            answer = pod.send(call)
        return await answer

    async def _keep_running(self, pod: Pod, first: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        quick_ends = 0
        while self.stopped is None:
            began = loop.time()
            try:
                outcome = await pod.run(first)
            except WorkerStartError as exc:
                pod.status = FAILED
                self.failure = str(exc)
                pod.log(f"tender: the worker could not start: {exc}")
                await self.notify()
                if not first.done():
                    first.set_exception(exc)
                    return
            except Exception as exc:  # a broken message: the worker is ended, never the loop
                pod.status = PENDING
                pod.log(f"tender: the gateway lost the worker ({exc!r}); starting it again")
                await self.notify()
            else:
                pod.status = PENDING
                if self.stopped is None:
                    pod.log(f"tender: the worker ended ({describe(outcome)}); starting it again")
                await self.notify()
            quick_ends = quick_ends + 1 if loop.time() - began < _STEADY_S else 0
            delay = 0.0 if quick_ends <= 1 else min(2.0 ** (quick_ends - 2), _MAX_BACKOFF_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pod.stopping.wait(), delay)
