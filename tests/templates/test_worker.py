"""The low-latency worker, run as the script it is: a subprocess with TENDER_WORKER and a socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).resolve().parents[2] / "templates" / "worker.py"
# As for the runner: CI may point this at the oldest Python the step images use.
WORKER_PYTHON = os.environ.get("TENDER_TEST_RUNNER_PYTHON", sys.executable)

CODE = """
import os
import sys
import threading

print("imported")
_together = threading.Barrier(3)


def add(a, b=1):
    print(f"adding {a} and {b}")
    sys.stdout.write("no newline")
    return {"total": a + b}


def reverse(document):
    with open(document["path"], "rb") as source:
        content = source.read()
    path = os.path.join(os.environ["TMPDIR"], "reversed-" + str(threading.get_ident()))
    with open(path, "wb") as out:
        out.write(content[::-1])
    return {"reversed": {"path": path}, "size": len(content)}


def fail(a):
    raise ValueError("not this one")


def undeclared(a):
    return {"surprise": 1}


def meet(a):
    _together.wait(timeout=30)  # passes only if three calls run at once
    return {"total": a}


def grab(a):
    return {"total": len(bytearray(a * 1024 * 1024))}


def context(a):
    import __craft_internal_execution_context as sdk_context

    _together.wait(timeout=30)  # three calls at once: each sees its own
    return {
        "seen": {
            "execution_id": sdk_context.current_execution_id.get(),
            "token": os.environ.get("CRAFT_AI_SDK_TOKEN"),
            "environ": os.environ["CRAFT_AI_EXECUTION_ID"],
            "path": os.getenv("PATH") is not None,
        }
    }
"""


class Worker:
    """One worker process and its end of the socket."""

    def __init__(
        self, tmp_path: Path, function: str, without: tuple[str, ...] = (), **spec: Any
    ) -> None:
        code_dir = tmp_path / "code"
        code_dir.mkdir(exist_ok=True)
        (code_dir / "f.py").write_text(textwrap.dedent(CODE), encoding="utf-8")
        self.tmp_path = tmp_path
        full_spec = {
            "code_dir": str(code_dir),
            "function_path": "f.py",
            "function_name": function,
            "outputs": [
                {"name": "total", "data_type": "number"},
                {"name": "size", "data_type": "number"},
                {"name": "reversed", "data_type": "file"},
            ],
            "max_value_bytes": 60000,
            "parallel": 3,
            **spec,
        }
        for key in without:
            del full_spec[key]
        ours, theirs = socket.socketpair()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TMPDIR": str(tmp_path),
            "TENDER_WORKER": json.dumps(full_spec),
        }
        self.process = subprocess.Popen(
            [WORKER_PYTHON, "-I", str(WORKER), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        theirs.close()
        ours.settimeout(60)
        self.socket = ours
        self.reader = ours.makefile("rb")

    def receive(self) -> dict[str, Any]:
        line = self.reader.readline()
        assert line, "the worker closed its socket"
        message: dict[str, Any] = json.loads(line)
        return message

    def until(self, key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The next message with ``key``, and the log messages before it."""
        logs = []
        while True:
            message = self.receive()
            if key in message:
                return message, logs
            logs.append(message)

    def call(
        self, call_id: str, inputs: list[dict[str, Any]], environment: dict[str, str] | None = None
    ) -> None:
        call_dir = self.tmp_path / call_id
        message = {"call": call_id, "dir": str(call_dir), "inputs": inputs}
        if environment is not None:
            message["environment"] = environment
        self.socket.sendall(json.dumps(message).encode() + b"\n")

    def close(self) -> int:
        self.reader.close()
        self.socket.close()
        self.process.communicate(timeout=60)
        return self.process.returncode


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def make(function: str, without: tuple[str, ...] = (), **spec: Any) -> Worker:
        worker = Worker(tmp_path, function, without, **spec)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.close()


def number(name: str, value: int) -> dict[str, Any]:
    text = json.dumps(value)
    return {
        "name": name,
        "data_type": "number",
        "env": f"X_{name}",
        "encoding": "json",
        "text": text,
    }


def test_it_imports_once_then_serves_calls_with_their_own_lines(start: Any) -> None:
    worker = start("add")
    ready, logs = worker.until("ready")
    assert ready["ready"] == worker.process.pid
    assert [(m["log"], m["line"]) for m in logs] == [(None, "imported")]

    worker.call("c1", [number("a", 2)])
    done, logs = worker.until("done")
    worker.call("c2", [number("a", 2), number("b", 5)])
    second, _ = worker.until("done")

    # An output the function did not return is null, as in a step.
    assert done == {"done": "c1", "values": {"total": "3", "size": "null"}, "files": []}
    assert [(m["log"], m["stream"], m["line"]) for m in logs] == [
        ("c1", "stdout", "adding 2 and 1"),
        ("c1", "stdout", "no newline"),  # what a call left unfinished ends with it
    ]
    assert second["values"]["total"] == "7"
    assert worker.close() == 0  # the end of the stream stops it


def test_files_in_and_out(start: Any, tmp_path: Path) -> None:
    worker = start("reverse")
    worker.until("ready")
    document = tmp_path / "document"
    document.write_bytes(b"abc")

    worker.call("c1", [{"name": "document", "data_type": "file", "path": str(document)}])
    done, _ = worker.until("done")

    assert done == {"done": "c1", "values": {"total": "null", "size": "3"}, "files": ["reversed"]}
    assert (tmp_path / "c1" / "outputs" / "reversed").read_bytes() == b"cba"


@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("fail", "function 'fail' raised ValueError"),
        ("undeclared", "undeclared output 'surprise'"),
    ],
)
def test_a_failing_call_fails_alone(start: Any, function: str, error: str) -> None:
    worker = start(function)
    worker.until("ready")

    worker.call("c1", [number("a", 1)])
    done, logs = worker.until("done")
    worker.call("c2", [number("a", 1)])
    again, _ = worker.until("done")

    assert error in done["error"]
    assert again["done"] == "c2"
    assert {m["log"] for m in logs} == {"c1"}
    assert logs[-1]["line"] == f"tender: {done['error']}"
    assert worker.process.poll() is None


def test_it_runs_parallel_calls_at_once(start: Any) -> None:
    worker = start("meet", parallel=3)
    worker.until("ready")

    for index in range(3):
        worker.call(f"c{index}", [number("a", index)])
    answers = [worker.until("done")[0] for _ in range(3)]

    assert sorted(a["done"] for a in answers) == ["c0", "c1", "c2"]
    assert all("error" not in a for a in answers)


def test_an_import_that_fails_says_why_and_exits(start: Any, tmp_path: Path) -> None:
    worker = start("missing")

    failed, _ = worker.until("failed")

    assert failed["failed"] == "'f.py' has no function named 'missing'"
    assert worker.close() == 1


def test_a_spec_without_its_keys_is_refused(start: Any) -> None:
    worker = start("add", without=("parallel", "outputs"))

    failed, _ = worker.until("failed")

    assert failed["failed"] == "TENDER_WORKER is missing outputs, parallel"
    assert worker.close() == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is Linux's")
def test_the_memory_limit_fails_the_call_that_passes_it(start: Any) -> None:
    worker = start("grab", memory_limit_bytes=128 * 1024 * 1024)
    worker.until("ready")

    worker.call("big", [number("a", 256)])
    big, _ = worker.until("done")
    worker.call("small", [number("a", 8)])
    small, _ = worker.until("done")

    assert big["error"] == "function 'grab' raised MemoryError"
    assert small["values"]["total"] == str(8 * 1024 * 1024)


def test_each_call_gives_the_sdk_its_own_execution_and_token(start: Any) -> None:
    worker = start("context", outputs=[{"name": "seen", "data_type": "json"}], parallel=3)
    worker.until("ready")

    for index in range(3):
        environment = {"CRAFT_AI_EXECUTION_ID": f"c{index}", "CRAFT_AI_SDK_TOKEN": f"t{index}"}
        worker.call(f"c{index}", [number("a", index)], environment)
    answers = {
        a["done"]: json.loads(a["values"]["seen"])
        for a in [worker.until("done")[0] for _ in range(3)]
    }

    assert answers == {
        f"c{index}": {
            "execution_id": f"c{index}",
            "token": f"t{index}",
            "environ": f"c{index}",
            "path": True,
        }
        for index in range(3)
    }
