"""Warm workers for low-latency deployments on the embedded engine: start, call, restart, stop.

A deployment's pods are worker processes (``templates/worker.py`` run by the pipeline's own
interpreter), each in its own process group as a step is (``engines.local.process``), each
serving ``parallel`` calls at once over a socket. Calls wait in the gateway for a free slot on a
running pod, the least busy first. A pod whose process ends is started again: at once the first
time, then after 1, 2, 4... up to 30 s while it keeps ending within a minute (as Kubernetes backs
off a crashing container); the calls it held fail with ``WorkerLostError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import templates
from gateway.engines.local.objects import generate_name
from gateway.engines.local.process import ProcessOutcome, run_process
from gateway.lowlatency.errors import WorkerLostError, WorkersStoppedError, WorkerStartError
from gateway.store.records import WorkerLogLine

__all__ = [
    "FAILED",
    "PENDING",
    "RUNNING",
    "CallOutcome",
    "LocalWorkers",
    "LogSink",
    "WorkerCall",
    "WorkerSpec",
]

# Kubernetes' pod phases, which the Argo engine will read from a Deployment's pods.
RUNNING, PENDING, FAILED = "Running", "Pending", "Failed"
WORKER_SCRIPT = Path(templates.__file__).parent / "worker.py"
LogSink = Callable[[WorkerLogLine], None]

_MAX_MESSAGE = 16 * 1024 * 1024  # a call's values are at most 0.06 MB; log lines are capped too
_GRACE_S = 2.0  # SIGTERM to SIGKILL when workers stop
_STEADY_S = 60.0  # a worker that ran this long before ending is restarted at once
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class WorkerSpec:
    """Everything the pods of one deployment are started with."""

    deployment: str
    python: str
    code_dir: Path
    function_path: str
    function_name: str
    outputs: list[dict[str, str]]  # {"name", "data_type"} of each output the function returns
    max_value_bytes: int
    parallel: int
    memory_limit_bytes: int | None
    env: Mapping[str, str]
    pods: int
    work_dir: Path  # one folder per pod below it: the pod's working folder and TMPDIR


@dataclass(frozen=True)
class WorkerCall:
    call_id: str  # the execution's id
    inputs: list[dict[str, Any]]  # as the step runner reads them, values given as `text`
    call_dir: Path  # file outputs go to <call_dir>/outputs/<name>
    environment: dict[str, str]  # what the SDK reads in this call: never logged

    def message(self) -> bytes:
        fields = {
            "call": self.call_id,
            "dir": str(self.call_dir),
            "inputs": self.inputs,
            "environment": self.environment,
        }
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class CallOutcome:
    pod_id: str
    values: dict[str, str]  # JSON text by output name
    files: list[str]  # outputs written to <call dir>/outputs/<name>
    error: str | None  # why the call failed (the worker's `tender:` line), None if it did not


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
        self.pods = [_Pod(generate_name(f"{spec.deployment}-"), self) for _ in range(spec.pods)]
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
            pod.terminate()
        await self.notify()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def notify(self) -> None:
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

    async def _keep_running(self, pod: _Pod, first: asyncio.Future[None]) -> None:
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
                    pod.log(f"tender: the worker ended ({_describe(outcome)}); starting it again")
                await self.notify()
            quick_ends = quick_ends + 1 if loop.time() - began < _STEADY_S else 0
            delay = 0.0 if quick_ends <= 1 else min(2.0 ** (quick_ends - 2), _MAX_BACKOFF_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pod.stopping.wait(), delay)


class _Pod:
    """One worker process at a time, and the calls it is serving."""

    def __init__(self, pod_id: str, group: _Group) -> None:
        self.pod_id = pod_id
        self.group = group
        self.status = PENDING
        self.stopping = asyncio.Event()  # the pod is going away for good
        self._cancel = asyncio.Event()  # this life of the process is ending
        self._calls: dict[str, asyncio.Future[CallOutcome]] = {}
        self._writer: asyncio.StreamWriter | None = None

    @property
    def free_slots(self) -> int:
        if self.status != RUNNING:
            return 0
        return self.group.spec.parallel - len(self._calls)

    def view(self) -> dict[str, str]:
        return {"pod_id": self.pod_id, "status": self.status}

    def terminate(self) -> None:
        self.stopping.set()
        self._cancel.set()

    def log(self, line: str, stream: str = "stderr", execution_id: str | None = None) -> None:
        self.group.sink(
            WorkerLogLine(
                deployment_name=self.group.spec.deployment,
                pod_id=self.pod_id,
                execution_id=execution_id,
                timestamp=datetime.now(UTC),
                stream=stream,
                content=line,
            )
        )

    def send(self, call: WorkerCall) -> asyncio.Future[CallOutcome]:
        assert self._writer is not None
        answer: asyncio.Future[CallOutcome] = asyncio.get_running_loop().create_future()
        self._calls[call.call_id] = answer
        self._writer.write(call.message())
        return answer

    async def run(self, first: asyncio.Future[None]) -> ProcessOutcome:
        """One life of the worker process, until it ends. Raises WorkerStartError if it ends,
        fails or times out before it is ready."""
        spec = self.group.spec
        folder = spec.work_dir / self.pod_id
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        self._cancel = asyncio.Event()
        if self.stopping.is_set():
            self._cancel.set()
        parent, child = socket.socketpair()
        env = {**spec.env, "TMPDIR": str(folder / "tmp"), "TENDER_WORKER": _worker_json(spec)}
        process = asyncio.create_task(
            run_process(
                [spec.python, "-I", str(WORKER_SCRIPT), str(child.fileno())],
                cwd=folder,
                env=env,
                deadline=None,
                cancel=self._cancel,
                on_line=lambda stream, line: self.log(line, stream),
                grace_seconds=_GRACE_S,
                stdout_limit=0,
                now=lambda: datetime.now(UTC),
                pass_fds=(child.fileno(),),
            )
        )
        try:
            reader, self._writer = await asyncio.open_unix_connection(
                sock=parent, limit=_MAX_MESSAGE
            )
            await self._wait_ready(reader, process, child)
            self.status = RUNNING
            self.group.failure = None
            if not first.done():
                first.set_result(None)
            await self.group.notify()
            await self._serve(reader)
            self.status = PENDING  # no call goes to a process that is ending
            return await process
        except BaseException:
            self._cancel.set()
            with contextlib.suppress(Exception):
                await process
            raise
        finally:
            self.status = PENDING if self.status == RUNNING else self.status
            child.close()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            parent.close()
            self._lose_calls(process)

    async def _wait_ready(
        self,
        reader: asyncio.StreamReader,
        process: asyncio.Task[ProcessOutcome],
        child: socket.socket,
    ) -> None:
        answer = asyncio.ensure_future(self._first_answer(reader))
        done, _ = await asyncio.wait(
            {answer, process},
            timeout=self.group.start_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        child.close()  # started: from now on the worker's end closes when the worker ends
        if answer not in done:
            answer.cancel()
            if process not in done:
                raise WorkerStartError(
                    f"the worker was not ready within {self.group.start_timeout_s:g} s"
                )
            if isinstance(process.exception(), OSError):
                raise WorkerStartError(f"the worker could not be started: {process.exception()}")
        else:
            message = answer.result()
            if "ready" in message:
                return
            if "failed" in message:
                await process  # it exits by itself; its last lines reach the pod's log first
                raise WorkerStartError(message["failed"])
        outcome = await process
        raise WorkerStartError(f"the worker ended before it was ready ({_describe(outcome)})")

    async def _first_answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        """``ready`` or ``failed``, after the lines the import wrote; empty if it ended."""
        async for line in reader:
            message: dict[str, Any] = json.loads(line)
            if "log" not in message:
                return message
            self._log_message(message)
        return {}

    async def _serve(self, reader: asyncio.StreamReader) -> None:
        """Read the worker's messages until it closes its end (it ended)."""
        async for line in reader:
            message = json.loads(line)
            if "log" in message:
                self._log_message(message)
            elif "done" in message:
                answer = self._calls.pop(message["done"], None)
                if answer is not None and not answer.done():
                    answer.set_result(
                        CallOutcome(
                            pod_id=self.pod_id,
                            values=message.get("values", {}),
                            files=message.get("files", []),
                            error=message.get("error"),
                        )
                    )
                await self.group.notify()

    def _log_message(self, message: dict[str, Any]) -> None:
        self.group.sink(
            WorkerLogLine(
                deployment_name=self.group.spec.deployment,
                pod_id=self.pod_id,
                execution_id=message["log"],
                timestamp=datetime.fromtimestamp(message["time"], UTC),
                stream="stderr" if message["stream"] == "stderr" else "stdout",
                content=message["line"],
            )
        )

    def _lose_calls(self, process: asyncio.Task[ProcessOutcome]) -> None:
        """Fail the calls the ended process held."""
        if not self._calls:
            return
        if self.group.stopped is not None:
            error: Exception = WorkersStoppedError(f"{self.group.stopped} while the call ran")
        else:
            ended = process.done() and not process.cancelled() and process.exception() is None
            how = _describe(process.result()) if ended else ""
            error = WorkerLostError(
                f"worker {self.pod_id} ended while it ran the call"
                + (f" ({how})" if how else "")
                + "; it is being started again"
            )
        for answer in self._calls.values():
            if not answer.done():
                answer.set_exception(error)
        self._calls.clear()


def _describe(outcome: ProcessOutcome) -> str:
    if outcome.signal is not None:
        return f"killed by {signal.Signals(outcome.signal).name}, exit code {outcome.exit_code}"
    return f"exit code {outcome.exit_code}"


def _worker_json(spec: WorkerSpec) -> str:
    return json.dumps(
        {
            "code_dir": str(spec.code_dir),
            "function_path": spec.function_path,
            "function_name": spec.function_name,
            "outputs": spec.outputs,
            "max_value_bytes": spec.max_value_bytes,
            "parallel": spec.parallel,
            "memory_limit_bytes": spec.memory_limit_bytes,
        }
    )
