"""The low-latency worker: the process behind one pod of a low-latency deployment.

It imports the pipeline's function once, then serves calls from the gateway, ``parallel`` at a
time on threads, with the step runner's own rules for inputs, the call and the outputs (the
functions of ``runner.py``, loaded from beside this file under a private name). Like the runner
it is stdlib-only, never imports tender and runs on any Python 3.8+.

The gateway talks to it over one socket (file descriptor ``argv[1]``), one JSON object a line:

- in: ``{"call": id, "dir": folder, "inputs": [entry, ...], "environment": {name: value}}``;
  entries as the runner's ``TENDER_STEP`` inputs, with a value's text in ``text`` instead of an
  environment variable; file outputs go to ``<folder>/outputs/<name>``; ``environment`` is what
  the SDK reads in this call (its execution id, token and URLs). The end of the stream means:
  stop once the calls in progress have ended.
- out: ``{"ready": pid}`` once the function is imported (or ``{"failed": message}``, then exit
  1); ``{"log": id, "stream", "line", "time"}`` for each line written to ``sys.stdout`` or
  ``sys.stderr`` (``id`` is the call whose thread wrote it, or null); ``{"done": id, "values":
  {name: json text}, "files": [name, ...]}`` or ``{"done": id, "error": message}``. A call's
  lines always come before its ``done``.

What the code writes to file descriptors 1 and 2 directly (child processes, C libraries) goes to
the process's own stdout and stderr, which the gateway keeps as the pod's log.

The unmodified craft-ai-sdk works inside a call, several calls at once: it reads the execution id
from the ContextVar ``current_execution_id`` of a module ``__craft_internal_execution_context``
(shared/execution_context.py), which this worker provides, and its token and URLs from
``os.environ`` when ``CraftAiSdk()`` is built, which this worker makes answer each call's own
``environment`` to the code running for that call (a ContextVar too: asyncio tasks of the call
see it, threads the function starts do not).
"""

from __future__ import annotations

import contextvars
import functools
import importlib.util
import io
import json
import os
import resource
import socket
import sys
import threading
import time
import traceback
import types
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from templates import runner as _runner
else:

    def _load_runner():
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
        spec = importlib.util.spec_from_file_location("_tender_runner", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    _runner = _load_runner()

_SPEC_KEYS = (
    "function_path",
    "function_name",
    "code_dir",
    "outputs",
    "max_value_bytes",
    "parallel",
)
_MAX_LINE = 64 * 1024  # characters of one log line; the rest is cut


# What the SDK reads (craft-ai-sdk shared/execution_context.py): the module's name is its.
_SDK_CONTEXT_MODULE = "__craft_internal_execution_context"
_call_environment: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "tender_call_environment"
)


class _CallEnviron(type(os.environ)):  # type: ignore[misc]
    """``os.environ``, where a call's own variables hide the process's while it runs."""

    def __getitem__(self, key: str) -> str:
        own = _call_environment.get(None)
        if own is not None and key in own:
            return own[key]
        value: str = super().__getitem__(key)
        return value


def _serve_sdk() -> types.ModuleType:
    """Install the SDK's execution context module, and a per-call ``os.environ``."""
    module = types.ModuleType(_SDK_CONTEXT_MODULE)
    module.current_execution_id = contextvars.ContextVar("current_execution_id")  # type: ignore[attr-defined]
    sys.modules[_SDK_CONTEXT_MODULE] = module
    os.environ.__class__ = _CallEnviron  # every reference to os.environ sees the calls' own
    return module


class _Channel:
    """The socket to the gateway; whole lines, written by one thread at a time."""

    def __init__(self, fd: int) -> None:
        self._socket = socket.socket(fileno=fd)
        self._reader = self._socket.makefile("rb")
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self._socket.sendall(data)

    def messages(self) -> Any:
        for line in self._reader:
            yield json.loads(line)


class _CallStream(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr``: each line becomes a message naming the call whose
    thread wrote it. Partial lines wait per thread for their end, or for the call's end."""

    def __init__(self, name: str, channel: _Channel, current: threading.local, fd: int) -> None:
        self._name = name
        self._channel = channel
        self._current = current
        self._fd = fd
        self._pending: dict[int, str] = {}

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd  # for code that hands sys.stdout to a child process

    def write(self, text: str) -> int:
        key = threading.get_ident()
        lines = (self._pending.pop(key, "") + text).split("\n")
        if lines[-1]:
            self._pending[key] = lines[-1]
        for line in lines[:-1]:
            self._send(line)
        return len(text)

    def end_call(self) -> None:
        """Send what this thread left without a newline."""
        rest = self._pending.pop(threading.get_ident(), "")
        if rest:
            self._send(rest)

    def _send(self, line: str) -> None:
        call = getattr(self._current, "call", None)
        if len(line) > _MAX_LINE:
            line = line[:_MAX_LINE] + " [line cut at 64 KiB]"
        message = {"log": call, "stream": self._name, "line": line, "time": time.time()}
        self._channel.send(message)


class _Worker:
    def __init__(self, spec: dict[str, Any], channel: _Channel) -> None:
        self._spec = spec
        self._channel = channel
        self._current = threading.local()
        self._streams = [
            _CallStream("stdout", channel, self._current, 1),
            _CallStream("stderr", channel, self._current, 2),
        ]
        sys.stdout, sys.stderr = self._streams
        self._function: Any = None
        self._sdk_context = _serve_sdk()

    def load(self) -> None:
        code_dir = os.path.realpath(self._spec["code_dir"])
        self._spec["code_dir"] = code_dir
        _runner._prepare_paths(code_dir, self._spec.get("deps_dir"))
        self._function = _runner._load_function(
            code_dir, self._spec["function_path"], self._spec["function_name"]
        )

    def serve(self) -> None:
        with ThreadPoolExecutor(self._spec["parallel"], thread_name_prefix="call") as calls:
            for message in self._channel.messages():
                calls.submit(self._serve_call, message)

    def _serve_call(self, message: dict[str, Any]) -> None:
        call = message["call"]
        self._current.call = call
        # Each task runs in its thread's own context: set for this call, reset after it.
        execution = self._sdk_context.current_execution_id.set(call)
        environment = _call_environment.set(message.get("environment") or {})
        try:
            answer = self._call(message)
        except _runner.StepError as exc:
            print(f"tender: {exc}", file=sys.stderr)
            answer = {"error": str(exc)}
        except Exception as exc:
            traceback.print_exc()
            print(f"tender: internal error in the worker: {exc!r}", file=sys.stderr)
            answer = {"error": f"internal error in the worker: {exc!r}"}
        finally:
            _call_environment.reset(environment)
            self._sdk_context.current_execution_id.reset(execution)
            for stream in self._streams:
                stream.end_call()
            self._current.call = None
        self._channel.send({"done": call, **answer})

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        spec = self._spec
        outputs_dir = os.path.join(message["dir"], "outputs")
        outputs = [
            {**entry, "path": os.path.join(outputs_dir, entry["name"])} for entry in spec["outputs"]
        ]
        kwargs = _runner._decode_inputs(message["inputs"])
        what = f"function {spec['function_name']!r}"
        result = _runner._call_user(what, functools.partial(self._function, **kwargs))
        step = {**spec, "outputs": outputs}
        writes = _runner._plan_outputs(step, result)
        names = {entry["path"]: entry["name"] for entry in outputs}
        _runner._write_outputs([write for write in writes if write[0] == "file"])
        return {
            "values": {names[path]: text for kind, path, text in writes if kind == "value"},
            "files": [names[path] for kind, path, _ in writes if kind == "file"],
        }


def _limit_memory(limit: int | None) -> None:
    """The pod's memory limit, as the data segment: what malloc and mmap hand out to write to
    (RLIMIT_AS would also count the address space threads and allocators only reserve)."""
    if limit is not None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def main() -> int:
    channel = _Channel(int(sys.argv[1]))
    try:
        spec: dict[str, Any] = json.loads(os.environ.get("TENDER_WORKER") or "null")
        missing = [key for key in _SPEC_KEYS if key not in (spec or {})]
        if missing:
            raise _runner.StepError(f"TENDER_WORKER is missing {', '.join(missing)}")
        _limit_memory(spec.get("memory_limit_bytes"))
        worker = _Worker(spec, channel)
        worker.load()
    except _runner.StepError as exc:
        print(f"tender: {exc}", file=sys.stderr)
        channel.send({"failed": str(exc)})
        return 1
    except Exception as exc:
        traceback.print_exc()
        channel.send({"failed": f"internal error in the worker: {exc!r}"})
        return 1
    channel.send({"ready": os.getpid()})
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
