"""Faults of the gateway's own process, against real ``tender serve`` processes.

Twenty executions run (half of them in a long sleep) when the server is killed with SIGKILL or
stopped with SIGTERM. Then: no step process of the old server may be alive (checked by process
group, from /proc), every execution is terminal within seconds, the lines the steps wrote before
the fault are readable, and new runs work.

Each test has its own server and data dir; on PostgreSQL, its own database, since an engine that
starts kills and ends what the store says a previous engine left running.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.store import Database, ExecutionRepository
from loopback import free_port, wait_until_serving
from tests.gateway.acceptance.folders import tar_gz

TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]
RUNS = 20
SLEEPERS = range(0, RUNS, 2)  # even numbers sleep; odd ones end at once
_TERMINAL = {"Succeeded", "Failed", "Error"}
_SETTLE_S = 20.0  # the test's patience: the gateway is expected within a few seconds

SLEEPY = """
import time


def sleepy(n):
    print(f"started {n}", flush=True)
    if n % 2 == 0:
        time.sleep(600)
    return {"n": n}
"""
FIELDS = {
    "function_path": "src/sleepy.py",
    "function_name": "sleepy",
    "inputs[0][name]": "n",
    "inputs[0][data_type]": "number",
    "outputs[0][name]": "n",
    "outputs[0][data_type]": "number",
}


class Server:
    """``tender serve`` on a data dir (and database) that outlive it, as an operator runs it."""

    def __init__(self, root: Path, database_url: str | None) -> None:
        self.data_dir = root / "data"
        self.database_url = database_url or f"sqlite:///{self.data_dir / 'tender.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENDER_")}
        self.env["TENDER_LONG_POLL_S"] = "1"
        self.env["TENDER_CONCURRENCY"] = str(RUNS)  # every execution runs at once
        if database_url:
            self.env["TENDER_DATABASE_URL"] = database_url
        self.stderr = root / "serve.stderr"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        created = subprocess.run(
            [*TENDER, "token", "create", "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.token = created.stdout.strip()

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.stderr.open("ab") as err:
            self.process = subprocess.Popen(
                [*TENDER, "serve", "--port", str(port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_until_serving(self.process, self.url, self.stderr)

    def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def session(self) -> requests.Session:
        session = requests.Session()
        answer = session.post(
            f"{self.url}/api/v1/auth/refresh", json={"refresh_token": self.token}, timeout=30
        )
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return session


def _database_params() -> list[Any]:
    url = os.environ.get("TENDER_TEST_DATABASE_URL")
    skip = pytest.mark.skip(reason="TENDER_TEST_DATABASE_URL is not set")
    return [
        pytest.param(None, id="sqlite"),
        pytest.param(url, id="postgres", marks=[pytest.mark.postgres, *([] if url else [skip])]),
    ]


@pytest.fixture(params=_database_params())
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    shared: str | None = request.param
    database_url = None
    if shared:
        database_url = _create_database(shared, f"tender_faults_{secrets.token_hex(4)}")
    served = Server(tmp_path, database_url)
    try:
        yield served
    finally:
        if served.process is not None:
            served.stop(signal.SIGKILL)
        _kill_groups(_step_groups(served))
        if database_url:
            _drop_database(shared or "", make_url(database_url).database or "")
    assert "Traceback" not in served.stderr.read_text(errors="replace")


def _create_database(url: str, name: str) -> str:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str, name: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# What the steps of these tests are: processes whose environment names a Workflow of the server.


def _step_groups(server: Server) -> set[int]:
    """Process groups of live steps started by this server's engine (by their environment)."""
    ids = set(_execution_ids(server))
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        names = {v.removeprefix(b"ARGO_WORKFLOW_NAME=").decode() for v in environ}
        if fields[0] != "Z" and names & ids:
            groups.add(int(fields[2]))
    return groups


def _alive(groups: set[int]) -> set[int]:
    """The groups that still have a live (not zombie) member."""
    alive = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in groups:
            alive.add(int(fields[2]))
    return alive


def _kill_groups(groups: set[int]) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def _execution_ids(server: Server) -> list[str]:
    db = Database(server.database_url)
    try:
        with db.transaction() as session:
            rows = session.execute(text("SELECT id FROM executions")).all()
        return [row[0] for row in rows]
    finally:
        db.dispose()


def _stored_states(server: Server) -> dict[str, str]:
    """Each execution's status as the store holds it, read as an operator would."""
    db = Database(server.database_url)
    try:
        repository = ExecutionRepository(db)
        return {
            execution_id: record.status
            for execution_id in _execution_ids(server)
            if (record := repository.get(execution_id)) is not None
        }
    finally:
        db.dispose()


# The scenario ------------------------------------------------------------------------------------


def _start_runs(server: Server, name: str) -> dict[int, str]:
    with server.session() as http:
        created = http.post(
            f"{server.url}/api/v1/pipelines",
            data={"pipeline_name": name, **FIELDS},
            files={"step_file": ("step_file", tar_gz({"src/sleepy.py": SLEEPY.encode()}))},
            timeout=60,
        )
        assert created.status_code == 200, created.text
        _until(
            lambda: (
                http.get(
                    f"{server.url}/api/v1/pipelines/{name}",
                    params={"wait_for_completion": "true"},
                    timeout=60,
                ).json()["creation_info"]["status"]
                == "ready"
            ),
            "the pipeline is ready",
        )
        runs = {}
        for n in range(RUNS):
            answer = http.post(
                f"{server.url}/api/v1/pipelines/{name}/run",
                data={"json_inputs": f'{{"n": {n}}}'},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            runs[n] = answer.json()["execution_id"]
    return runs


def _logs(server: Server, execution_id: str) -> list[str]:
    with server.session() as http:
        answer = http.post(f"{server.url}/api/v1/executions/{execution_id}/logs", json={})
        assert answer.status_code == 200, answer.text
        return [line["message"] for line in answer.json()[0]]


def _statuses(server: Server, runs: dict[int, str]) -> dict[int, str]:
    with server.session() as http:
        return {
            n: http.get(f"{server.url}/api/v1/executions/{execution_id}").json()["status"]
            for n, execution_id in runs.items()
        }


def _until(check: Callable[[], bool], what: str, timeout: float = _SETTLE_S) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def _sleepers_running(server: Server, runs: dict[int, str]) -> set[int]:
    """Wait until every sleeper printed its first line and every other run ended."""

    def ready() -> bool:
        statuses = _statuses(server, runs)
        printed = all(f"started {n}" in _logs(server, runs[n]) for n in SLEEPERS)
        quick_done = all(statuses[n] == "Succeeded" for n in runs if n not in SLEEPERS)
        return printed and quick_done and all(statuses[n] == "Running" for n in SLEEPERS)

    _until(ready, "the sleeping steps run and the others ended", timeout=120)
    groups = _step_groups(server)
    assert len(groups) == len(SLEEPERS), groups
    return groups


def _check_after_restart(server: Server, runs: dict[int, str], name: str) -> dict[int, str]:
    """All runs terminal within seconds, their early lines kept, and a new run works."""
    _until(lambda: set(_statuses(server, runs).values()) <= _TERMINAL, "all runs are terminal")
    statuses = _statuses(server, runs)
    assert {statuses[n] for n in SLEEPERS} == {"Error"}, statuses
    for n in SLEEPERS:
        assert f"started {n}" in _logs(server, runs[n])
    with server.session() as http:
        again = http.post(
            f"{server.url}/api/v1/pipelines/{name}/run",
            data={"json_inputs": '{"n": 1}'},
            timeout=60,
        ).json()["execution_id"]
        outputs = http.get(
            f"{server.url}/api/v1/executions/{again}/outputs",
            params={"wait_for_completion": "true"},
            timeout=60,
            allow_redirects=True,
        )
        assert outputs.status_code == 200, outputs.text
        assert [o["value"] for o in outputs.json()["outputs"]] == [1]
    return statuses


def _failure(server: Server, execution_id: str) -> str:
    with server.session() as http:
        answer = http.get(f"{server.url}/api/v1/executions/{execution_id}/outputs", timeout=60)
        assert answer.status_code == 500, answer.text
        message: str = answer.json()["message"]
        return message


def test_kill_9_leaves_no_step_running_and_keeps_their_lines(server: Server) -> None:
    server.start()
    runs = _start_runs(server, "sleepy")
    groups = _sleepers_running(server, runs)

    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    server.start()

    assert _alive(groups) == set(), "steps of the killed server still run"
    work = server.data_dir / "engine" / "work"
    assert not [runs[n] for n in SLEEPERS if (work / runs[n]).exists()], "work folders left"
    _check_after_restart(server, runs, "sleepy")
    assert "restarted" in _failure(server, runs[SLEEPERS[0]])


def test_sigterm_ends_running_steps_and_their_executions(server: Server) -> None:
    server.start()
    runs = _start_runs(server, "sleepy")
    groups = _sleepers_running(server, runs)

    started = time.monotonic()
    server.stop(signal.SIGTERM)
    assert time.monotonic() - started < _SETTLE_S

    # Before any restart: the steps are gone, the store says how each execution ended.
    assert _alive(groups) == set(), "steps outlived the server"
    stored = _stored_states(server)
    assert {stored[runs[n]] for n in SLEEPERS} == {"Error"}, stored
    assert {stored[runs[n]] for n in runs if n not in SLEEPERS} == {"Succeeded"}, stored

    server.start()
    _check_after_restart(server, runs, "sleepy")
    assert "shut down" in _failure(server, runs[SLEEPERS[0]])
