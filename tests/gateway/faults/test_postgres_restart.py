"""PostgreSQL restarted under a running gateway: requests during the outage get a 503 that
says so (never a 500), the gateway reconnects by itself, and no execution is lost: those that
ran through the restart end and are recorded, new ones run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from loopback import free_port
from tests.gateway.acceptance.folders import tar_gz
from tests.gateway.faults.conftest import Postgres

TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]
NAP = b"import time\n\ndef nap(seconds):\n    time.sleep(seconds)\n    return {'slept': seconds}\n"


@contextmanager
def _serve(data_dir: Path, database_url: str) -> Iterator[tuple[requests.Session, str, Path]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENDER_")}
    env |= {"TENDER_DATABASE_URL": database_url, "TENDER_LONG_POLL_S": "1"}
    token = subprocess.run(
        [*TENDER, "token", "create", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    base = f"http://127.0.0.1:{free_port()}"
    log = data_dir.parent / "serve.stderr"
    with log.open("wb") as stderr:
        server = subprocess.Popen(
            [*TENDER, "serve", "--port", base.rsplit(":", 1)[1], "--data-dir", str(data_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _until(lambda: _answers(f"{base}/openapi.json"), 180)
        session = requests.Session()
        refreshed = session.post(f"{base}/api/v1/auth/refresh", json={"refresh_token": token})
        session.headers["Authorization"] = f"Bearer {refreshed.json()['access_token']}"
        yield session, f"{base}/api/v1", log
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def _until(condition: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s")


def _run(http: requests.Session, api: str, name: str) -> str:
    answer = http.post(f"{api}/pipelines/{name}/run", data={"json_inputs": '{"seconds": 2}'})
    assert answer.status_code == 200, answer.text
    execution_id: str = answer.json()["execution_id"]
    return execution_id


def test_the_gateway_reconnects_and_loses_no_execution(postgres: Postgres, tmp_path: Path) -> None:
    with _serve(tmp_path / "data", postgres.url) as (http, api, log):
        created = http.post(
            f"{api}/pipelines",
            data={
                "pipeline_name": "nap",
                "function_path": "src/nap.py",
                "function_name": "nap",
                "inputs[0][name]": "seconds",
                "inputs[0][data_type]": "number",
                "outputs[0][name]": "slept",
                "outputs[0][data_type]": "number",
            },
            files={"step_file": ("code.tar.gz", tar_gz({"src/nap.py": NAP}))},
        )
        assert created.status_code == 200, created.text
        ready = http.get(f"{api}/pipelines/nap", params={"wait_for_completion": "true"})
        assert ready.json()["creation_info"]["status"] == "ready"
        before = [_run(http, api, "nap") for _ in range(5)]

        postgres.stop()
        outage = http.get(f"{api}/pipelines/nap/executions")
        postgres.start()

        _until(lambda: http.get(f"{api}/pipelines").status_code == 200, 60)
        after = [_run(http, api, "nap") for _ in range(5)]

        def all_ended() -> list[dict[str, Any]] | None:
            listed: list[dict[str, Any]] = http.get(f"{api}/pipelines/nap/executions").json()
            ended = all(e["status"] not in ("Pending", "Running") for e in listed)
            return listed if ended and len(listed) == 10 else None

        executions = _until(all_ended, 180)

    assert outage.status_code == 503, outage.text
    assert outage.json()["name"] == "StoreUnavailable"
    assert sorted(e["execution_id"] for e in executions) == sorted(before + after)
    assert {e["status"] for e in executions} == {"Succeeded"}, executions
    assert "Traceback" not in log.read_text(), log.read_text()
