"""Faults against the real controller: what the caller sees, and that nothing is lost.

A step that fails, a Workflow stopped or deleted behind tender's back, the gateway restarted
while an execution runs, the workflow-controller killed and started again, the API server out of
reach for a while. Each test has its own ``tender serve`` on the test cluster.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES as T
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, Output

from argo_gateway import ArgoGateway
from gateway.failures import WORKFLOW_GONE
from tests.gateway.acceptance.folders import FAIL, GATED
from tests.gateway.argo.api_proxy import ApiProxy
from tests.gateway.argo.serving import Served, create_pipeline, served

pytestmark = pytest.mark.argo

EXIT_WITHOUT_A_WORD = """
import os


def quit():
    os._exit(1)
"""


@pytest.fixture
def server(argo_gateway: ArgoGateway, tmp_path: Path) -> Iterator[Served]:
    with served(argo_gateway, tmp_path / "gateway") as gateway:
        yield gateway
    argo_gateway.cluster.delete_all()


def _session(server: Served) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"{server.base_url}/api/v1/auth/refresh", json={"refresh_token": server.token}, timeout=30
    )
    session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return session


def _gated(server: Served, tmp_path: Path) -> tuple[str, Path]:
    """A pipeline whose function waits for a file, and the file's path."""
    name = f"gated-{secrets.token_hex(3)}"
    create_pipeline(
        server.sdk(),
        name,
        tmp_path / "gated",
        {"src/gated.py": GATED},
        "gated",
        inputs=[Input("release", T.STRING), Input("number", T.NUMBER)],
        outputs=[Output("doubled", T.NUMBER)],
    )
    return name, tmp_path / "release"


def _start(session: requests.Session, server: Served, name: str, inputs: dict[str, Any]) -> str:
    run = session.post(
        f"{server.base_url}/api/v1/pipelines/{name}/run",
        data={"json_inputs": json.dumps(inputs)},
        timeout=60,
    )
    assert run.status_code == 200, run.text
    execution_id: str = run.json()["execution_id"]
    return execution_id


def _outputs(session: requests.Session, server: Served, execution_id: str) -> requests.Response:
    """The outputs once the execution ended (the long-poll, followed as the SDK follows it)."""
    url = f"{server.base_url}/api/v1/executions/{execution_id}/outputs?wait_for_completion=true"
    deadline = time.monotonic() + 120
    while True:
        answer = session.get(url, allow_redirects=False, timeout=60)
        if answer.status_code != 307 or time.monotonic() > deadline:
            return answer


def _phase(argo: ArgoGateway, name: str) -> str | None:
    with argo.cluster.kube() as kube:
        phase: str | None = (
            kube.get(argo.cluster.path("workflows", name)).get("status", {}).get("phase")
        )
        return phase


def _until_running(argo: ArgoGateway, name: str) -> None:
    deadline = time.monotonic() + 60
    while _phase(argo, name) != "Running":
        assert time.monotonic() < deadline, f"{name} never ran"
        time.sleep(0.1)


class _Running(NamedTuple):
    name: str  # a gated pipeline (``_gated``)
    release: Path  # its executions end once this file exists
    session: requests.Session
    execution_id: str  # running on the cluster


def _running_gated(server: Served, argo: ArgoGateway, tmp_path: Path, number: int) -> _Running:
    """A gated pipeline with one execution that the cluster runs, waiting for its release."""
    name, release = _gated(server, tmp_path)
    session = _session(server)
    execution_id = _start(session, server, name, {"release": str(release), "number": number})
    _until_running(argo, execution_id)
    return _Running(name, release, session, execution_id)


def test_a_step_that_exits_without_a_word_fails_with_argos_message(
    server: Served, tmp_path: Path
) -> None:
    sdk = server.sdk()
    name = f"quit-{secrets.token_hex(3)}"
    create_pipeline(sdk, name, tmp_path / "quit", {"src/quit.py": EXIT_WITHOUT_A_WORD}, "quit")

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(name)

    assert raised.value.name == "ExecutionFailed"
    assert "main: Error (exit code 1)" in raised.value.message
    [execution] = sdk.list_pipeline_executions(name)
    assert execution["status"] == "Failed"
    assert execution["steps"][0]["status"] == "Failed"


def test_a_failing_function_names_its_error_and_keeps_its_logs(
    server: Served, tmp_path: Path
) -> None:
    sdk = server.sdk()
    name = f"fail-{secrets.token_hex(3)}"
    create_pipeline(
        sdk,
        name,
        tmp_path / "fail",
        {"src/fail.py": FAIL},
        "fail",
        inputs=[Input("reason", T.STRING)],
    )

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(name, inputs={"reason": "bad luck"})

    assert "RuntimeError" in raised.value.message
    [execution] = sdk.list_pipeline_executions(name)
    lines = [line["message"] for line in sdk.get_pipeline_execution_logs(execution["execution_id"])]
    assert "about to fail" in lines
    assert "RuntimeError: bad luck" in lines


def test_a_workflow_stopped_behind_tenders_back_ends_failed(
    server: Served, argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    _, _, session, execution_id = _running_gated(server, argo_gateway, tmp_path, 1)

    with argo_gateway.cluster.kube() as kube:
        kube.patch(
            argo_gateway.cluster.path("workflows", execution_id), {"spec": {"shutdown": "Stop"}}
        )
    answer = _outputs(session, server, execution_id)

    assert answer.status_code == 500, answer.text
    assert answer.json()["name"] == "ExecutionFailed"
    # Argo v4's own words for a stopped pod.
    assert answer.json()["message"].endswith("workflow shutdown with strategy:  Stop")
    execution = session.get(f"{server.base_url}/api/v1/executions/{execution_id}", timeout=30)
    assert execution.json()["status"] == "Failed"


def test_a_workflow_deleted_behind_tenders_back_ends_in_error_saying_so(
    server: Served, argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    _, _, session, execution_id = _running_gated(server, argo_gateway, tmp_path, 1)

    with argo_gateway.cluster.kube() as kube:
        kube.delete(argo_gateway.cluster.path("workflows", execution_id))
    answer = _outputs(session, server, execution_id)

    assert answer.status_code == 500, answer.text
    assert answer.json()["message"].endswith(WORKFLOW_GONE)
    execution = session.get(f"{server.base_url}/api/v1/executions/{execution_id}", timeout=30)
    assert execution.json()["status"] == "Error"
    assert execution.json()["end_date"] is not None


def test_the_gateway_restarted_mid_run_loses_nothing_and_records_once(
    server: Served, argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    name, release, session, first = _running_gated(server, argo_gateway, tmp_path, 21)

    server.stop()
    release.touch()  # the execution ends while no gateway watches
    argo_gateway.cluster.wait_for_workflow(first)
    server.start()
    second = _start(_session(server), server, name, {"release": str(release), "number": 2})

    session = _session(server)
    assert _outputs(session, server, first).json()["outputs"][0]["value"] == 42
    assert _outputs(session, server, second).json()["outputs"][0]["value"] == 4
    listed = session.get(f"{server.base_url}/api/v1/pipelines/{name}/executions", timeout=30)
    assert sorted(e["execution_id"] for e in listed.json()) == sorted([first, second])
    assert {e["status"] for e in listed.json()} == {"Succeeded"}


def test_executions_finish_when_the_controller_is_killed_and_started_again(
    server: Served, argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    _, release, session, execution_id = _running_gated(server, argo_gateway, tmp_path, 5)

    argo_gateway.cluster.running.kill_controller()
    try:
        release.touch()
        time.sleep(2)  # the step ends while no controller runs
        assert _phase(argo_gateway, execution_id) == "Running"
    finally:
        argo_gateway.cluster.running.start_controller()
    answer = _outputs(session, server, execution_id)

    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["value"] == 10


def test_the_api_server_out_of_reach_is_a_503_then_all_recovers(
    argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    with (
        ApiProxy(argo_gateway.kubeconfig, tmp_path / "via-proxy.kubeconfig") as proxy,
        served(argo_gateway, tmp_path / "gateway", KUBECONFIG=str(proxy.kubeconfig)) as server,
    ):
        name, release, session, running = _running_gated(server, argo_gateway, tmp_path, 3)

        proxy.pause()
        refused = session.post(
            f"{server.base_url}/api/v1/pipelines/{name}/run",
            data={"json_inputs": json.dumps({"release": str(release), "number": 1})},
            timeout=60,
        )
        release.touch()  # ends while the gateway cannot see it
        argo_gateway.cluster.wait_for_workflow(running)
        time.sleep(1)
        proxy.resume()

        assert refused.status_code == 503, refused.text
        assert refused.json()["name"] == "EngineUnavailable"
        assert "cannot be reached" in refused.json()["message"]
        assert _outputs(session, server, running).json()["outputs"][0]["value"] == 6
        later = _start(session, server, name, {"release": str(release), "number": 4})
        assert _outputs(session, server, later).json()["outputs"][0]["value"] == 8
    argo_gateway.cluster.delete_all()
