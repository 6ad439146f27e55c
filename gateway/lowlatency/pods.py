"""One pod of a low-latency deployment on the embedded engine: a worker process at a time.

The worker (``templates/worker.py``, run by the pipeline's own interpreter) lives in its own
process group as a step does (``engines.local.process``) and talks to the gateway over a socket
pair (the protocol is in the worker's docstring). A pod knows how to start its process, wait
until the function is imported, send calls and read their ends and log lines, and fail the
calls it held when the process ends; ``workers`` decides which pod serves a call and when a pod
starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import templates
from gateway.engines.local.process import ProcessOutcome, run_process
from gateway.lowlatency.errors import WorkerLostError, WorkersStoppedError, WorkerStartError
from gateway.store.records import WorkerLogLine

__all__ = [
    "FAILED",
    "PENDING",
    "RUNNING",
    "WORKER_SCRIPT",
    "CallOutcome",
    "LogSink",
    "Pod",
    "WorkerCall",
    "WorkerSpec",
    "describe",
]

# Kubernetes' pod phases, which the Argo engine will read from a Deployment's pods.
RUNNING, PENDING, FAILED = "Running", "Pending", "Failed"
WORKER_SCRIPT = Path(templates.__file__).parent / "worker.py"
LogSink = Callable[[WorkerLogLine], None]

_MAX_MESSAGE = 16 * 1024 * 1024  # a call's values are at most 0.06 MB; log lines are capped too
_GRACE_S = 2.0  # SIGTERM to SIGKILL when workers stop


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


class Pod:
    """One worker process at a time, and the calls it is serving. ``changed`` is awaited
    whenever its status changes or a slot frees up."""

    def __init__(
        self,
        pod_id: str,
        spec: WorkerSpec,
        sink: LogSink,
        *,
        start_timeout_s: float,
        changed: Callable[[], Awaitable[None]],
    ) -> None:
        self.pod_id = pod_id
        self.spec = spec
        self._sink = sink
        self._start_timeout_s = start_timeout_s
        self._changed = changed
        self.stop_reason: str | None = None  # why, once the pod is going away for good
        self.status = PENDING
        self.stopping = asyncio.Event()  # the pod is going away for good
        self._cancel = asyncio.Event()  # this life of the process is ending
        self._calls: dict[str, asyncio.Future[CallOutcome]] = {}
        self._writer: asyncio.StreamWriter | None = None

    @property
    def free_slots(self) -> int:
        if self.status != RUNNING:
            return 0
        return self.spec.parallel - len(self._calls)

    def view(self) -> dict[str, str]:
        return {"pod_id": self.pod_id, "status": self.status}

    def terminate(self, reason: str) -> None:
        self.stop_reason = reason
        self.stopping.set()
        self._cancel.set()

    def log(self, line: str, stream: str = "stderr") -> None:
        """A line of the pod's own: the process's stdout or stderr, or the gateway's word."""
        self._sink(
            WorkerLogLine(
                deployment_name=self.spec.deployment,
                pod_id=self.pod_id,
                execution_id=None,
                timestamp=datetime.now(UTC),
                stream=stream,
                content=line,
            )
        )

    def _log_lines(self, stream: str, lines: list[str]) -> None:
        for line in lines:
            self.log(line, stream)

    def send(self, call: WorkerCall) -> asyncio.Future[CallOutcome]:
        assert self._writer is not None
        answer: asyncio.Future[CallOutcome] = asyncio.get_running_loop().create_future()
        self._calls[call.call_id] = answer
        self._writer.write(call.message())
        return answer

    async def run(self, first: asyncio.Future[None]) -> ProcessOutcome:
        """One life of the worker process, until it ends. Raises WorkerStartError if it ends,
        fails or times out before it is ready."""
        spec = self.spec
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
                on_lines=self._log_lines,
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
            if not first.done():
                first.set_result(None)
            await self._changed()
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
            timeout=self._start_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        child.close()  # started: from now on the worker's end closes when the worker ends
        if answer not in done:
            answer.cancel()
            if process not in done:
                raise WorkerStartError(
                    f"the worker was not ready within {self._start_timeout_s:g} s"
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
        raise WorkerStartError(f"the worker ended before it was ready ({describe(outcome)})")

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
                await self._changed()

    def _log_message(self, message: dict[str, Any]) -> None:
        self._sink(
            WorkerLogLine(
                deployment_name=self.spec.deployment,
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
        if self.stop_reason is not None:
            error: Exception = WorkersStoppedError(f"{self.stop_reason} while the call ran")
        else:
            ended = process.done() and not process.cancelled() and process.exception() is None
            how = describe(process.result()) if ended else ""
            error = WorkerLostError(
                f"worker {self.pod_id} ended while it ran the call"
                + (f" ({how})" if how else "")
                + "; it is being started again"
            )
        for answer in self._calls.values():
            if not answer.done():
                answer.set_exception(error)
        self._calls.clear()


def describe(outcome: ProcessOutcome) -> str:
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
