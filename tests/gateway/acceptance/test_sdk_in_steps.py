"""The unmodified SDK inside running steps: ``CraftAiSdk()`` with no arguments records metrics
and uses the data store, from a run, an endpoint call and a periodic deployment; its token is
scoped, revoked when the execution ends, and written nowhere."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES, CraftAiSdk
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination
from sqlalchemy import MetaData, select

from gateway.store import Database
from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.folders import write_folder

T = INPUT_OUTPUT_TYPES
LIST_VALUES = 10_050  # more than the SDK's batch of 10,000: two requests

# The step hands its token to the test through `leak_to` (a path on this machine): only so that
# the test can show where the token is not.
METERED = """
import io
import json
import os
import time

from craft_ai_sdk import CraftAiSdk
from craft_ai_sdk.exceptions import SdkException


def _status(call):
    try:
        call()
    except SdkException as error:
        return error.status_code
    return 200


def measure(leak_to, release, count):
    execution_id = os.environ["CRAFT_AI_EXECUTION_ID"]
    with open(leak_to, "w") as leak:
        json.dump(
            {
                "execution_id": execution_id,
                "token": os.environ["CRAFT_AI_SDK_TOKEN"],
                "environment_url": os.environ["CRAFT_AI_ENVIRONMENT_URL"],
                "control_url": os.environ["CRAFT_AI_CONTROL_URL"],
            },
            leak,
        )
    sdk = CraftAiSdk()
    sdk.record_metric_value("accuracy", 0.5)
    sdk.record_metric_value("accuracy", 0.75)
    sdk.record_list_metric_values("loss", [i / 4 for i in range(int(count))])
    path = "steps/" + execution_id + ".txt"
    sdk.upload_data_store_object(io.BytesIO(execution_id.encode()), path)
    denied = {
        "delete_pipeline": _status(lambda: sdk.delete_pipeline("anything")),
        "list_environment_variables": _status(sdk.list_environment_variables),
        "generate_new_endpoint_token": _status(
            lambda: sdk.generate_new_endpoint_token("anything")
        ),
        "list_pipelines": _status(sdk.list_pipelines),
    }
    waited = 0.0
    while not os.path.exists(release) and waited < 120:
        time.sleep(0.02)
        waited += 0.02
    return {
        "denied": denied,
        "user": sdk.who_am_i()["id"],
        "stored": sdk.get_data_store_object_information(path)["path"],
    }
"""
OUTPUTS = ("denied", "user", "stored")


class Metered(NamedTuple):
    name: str
    folder: Path


@pytest.fixture(scope="module")
def metered(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    """A pipeline whose step uses the SDK (installed from its requirements), made once."""
    folder = tmp_path_factory.mktemp("metered")
    write_folder(
        folder / "code",
        {"src/metered.py": METERED, "requirements.txt": "craft-ai-sdk==0.74.7\n"},
    )
    sdk = CraftAiSdk(
        sdk_token=gateway.token, environment_url=gateway.base_url, control_url=gateway.base_url
    )
    name = f"metered-{secrets.token_hex(3)}"
    created = sdk.create_pipeline(
        name,
        function_path="src/metered.py",
        function_name="measure",
        container_config={
            "local_folder": str(folder / "code"),
            "requirements_path": "requirements.txt",
        },
        inputs=[Input("leak_to", T.STRING), Input("release", T.STRING), Input("count", T.NUMBER)],
        outputs=[Output("denied", T.JSON), Output("user", T.STRING), Output("stored", T.STRING)],
    )
    assert created["creation_info"]["status"] == "ready", sdk.get_pipeline_logs(name)
    yield Metered(name, folder)
    sdk.delete_pipeline(name, force_deployments_deletion=True)


def _wait_for_json(path: Path, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            try:
                found: dict[str, Any] = json.loads(path.read_text())
            except ValueError:
                pass  # being written
            else:
                return found
        time.sleep(0.05)
    pytest.fail(f"the step wrote nothing to {path} within {timeout_s} s")


def _refresh(gateway: Gateway, token: str) -> requests.Response:
    return requests.post(f"{gateway.api}/auth/refresh", json={"refresh_token": token}, timeout=30)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def _stored_text(gateway: Gateway) -> str:
    """Every row of every table of the gateway's store, as text: manifests, records, logs."""
    db = Database(gateway.database_url)
    try:
        tables = MetaData()
        tables.reflect(db.engine)
        with db.engine.connect() as connection:
            return "\n".join(
                repr(row)
                for table in tables.sorted_tables
                for row in connection.execute(select(table))
            )
    finally:
        db.dispose()


def _files_holding(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


@pytest.mark.realtime
def test_the_sdk_inside_a_run_an_endpoint_and_a_schedule(
    sdk: Any, gateway: Gateway, metered: Metered, tmp_path: Path
) -> None:
    name = metered.name
    cron, endpoint = f"{name}-cron", f"{name}-ep"
    periodic_leak = tmp_path / "periodic.json"
    # First, so that its first minute passes while the rest of the test runs.
    sdk.create_deployment(
        name,
        cron,
        "periodic",
        schedule="* * * * *",
        inputs_mapping=[
            InputSource(pipeline_input_name="leak_to", constant_value=str(periodic_leak)),
            InputSource(pipeline_input_name="release", constant_value=str(tmp_path)),
            InputSource(pipeline_input_name="count", constant_value=3),
        ],
        outputs_mapping=[OutputDestination(pipeline_output_name=o, is_null=True) for o in OUTPUTS],
    )
    sdk.create_deployment(name, endpoint, "endpoint")
    me = sdk.who_am_i()["id"]

    # A run, held until the test has tried its token from outside.
    run_leak, release = tmp_path / "run.json", tmp_path / "release"
    inputs = {"leak_to": str(run_leak), "release": str(release), "count": LIST_VALUES}
    run_id = sdk.run_pipeline(name, inputs=inputs, wait_for_completion=False)["execution_id"]
    leaked = _wait_for_json(run_leak)
    assert leaked["execution_id"] == run_id
    assert leaked["environment_url"] == leaked["control_url"] == gateway.base_url
    step_token = leaked["token"]
    traded = _refresh(gateway, step_token)
    assert traded.status_code == 200, traded.text
    step = _bearer(traded.json()["access_token"])
    api = gateway.api
    assert requests.get(f"{api}/data-store/list", headers=step, timeout=30).status_code == 200
    refused = requests.get(f"{api}/environment-variables", headers=step, timeout=30)
    assert (refused.status_code, refused.json()["name"]) == (403, "ForbiddenForStep")
    gone = requests.delete(f"{api}/pipelines/{name}", headers=step, timeout=30)
    assert gone.status_code == 403
    others = requests.get(
        f"{api}/metrics/single-value",
        params={"filters[execution_id]": "another-execution"},
        headers=step,
        timeout=30,
    )
    assert others.status_code == 403
    release.touch()
    outputs = sdk.retrieve_pipeline_execution_outputs(run_id)["outputs"]
    assert outputs["denied"] == {
        "delete_pipeline": 403,
        "list_environment_variables": 403,
        "generate_new_endpoint_token": 403,
        "list_pipelines": 403,
    }
    assert outputs["user"] == me  # a step acts for whoever started its execution
    assert outputs["stored"] == f"steps/{run_id}.txt"
    # The execution ended: its token and the access token it was traded for stop working.
    revoked = _refresh(gateway, step_token)
    assert (revoked.status_code, revoked.json()["name"]) == (401, "StepTokenRevoked")
    after = requests.get(f"{api}/data-store/list", headers=step, timeout=30)
    assert (after.status_code, after.json()["name"]) == (401, "StepTokenRevoked")
    forged = _refresh(gateway, step_token[:-2] + ("AA" if step_token[-2:] != "AA" else "BB"))
    assert forged.status_code == 401

    # An endpoint call, with the SDK token.
    endpoint_leak = tmp_path / "endpoint.json"
    called = sdk.trigger_endpoint(
        endpoint, inputs={"leak_to": str(endpoint_leak), "release": str(release), "count": 2}
    )
    endpoint_id = called["execution_id"]
    assert called["outputs"]["user"] == me

    # The schedule's first execution.
    deadline = time.monotonic() + 150
    periodic: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not periodic:
        periodic = [
            e
            for e in sdk.list_pipeline_executions(name)
            if e["deployment_name"] == cron and e["end_date"]
        ]
        time.sleep(0.5)
    assert periodic, "the '* * * * *' schedule started no execution within 150 s"
    sdk.update_deployment(cron, is_enabled=False)
    periodic_id = periodic[-1]["execution_id"]
    assert periodic[-1]["status"] == "Succeeded"

    # Metrics, filtered as the SDK filters them.
    assert sdk.get_metrics(execution_id=run_id) == [
        {
            "name": "accuracy",
            "value": 0.75,
            "created_at": sdk.get_metrics(execution_id=run_id)[0]["created_at"],
            "execution_id": run_id,
            "deployment_name": None,
            "pipeline_name": name,
        }
    ]
    by_pipeline = {
        (m["execution_id"], m["name"], m["value"]) for m in sdk.get_metrics(pipeline_name=name)
    }
    for execution_id in (run_id, endpoint_id, periodic_id):
        assert (execution_id, "accuracy", 0.75) in by_pipeline
    assert [m["execution_id"] for m in sdk.get_metrics(deployment_name=endpoint)] == [endpoint_id]
    assert periodic_id in [m["execution_id"] for m in sdk.get_metrics(deployment_name=cron)]
    assert sdk.get_metrics(name="no_such_metric", pipeline_name=name) == []
    [run_list] = sdk.get_list_metrics(execution_id=run_id)
    assert run_list["name"] == "loss"
    assert run_list["values"] == [i / 4 for i in range(LIST_VALUES)]
    [endpoint_list] = sdk.get_list_metrics(name="loss", deployment_name=endpoint)
    assert endpoint_list["values"] == [0.0, 0.25]
    periodic_lists = sdk.get_list_metrics(deployment_name=cron, name="loss")
    assert [0.0, 0.25, 0.5] in [m["values"] for m in periodic_lists]
    stored = {o["path"] for o in sdk.list_data_store_objects("steps")}
    assert {f"steps/{run_id}.txt", f"steps/{endpoint_id}.txt"} <= stored

    # No step token in a manifest, a record, a log or any file of the gateway.
    tokens = [step_token, _wait_for_json(endpoint_leak)["token"]]
    tokens.append(_wait_for_json(periodic_leak)["token"])
    stored_text = _stored_text(gateway)
    log = gateway.log.read_text(errors="replace")
    for token in tokens:
        assert token.startswith("tdx_")
        assert token not in stored_text
        assert token not in log
        assert _files_holding(gateway.data_dir, token) == []
    # The test proves it can see a value where it is: the execution ids are there.
    assert run_id in stored_text

    # Deleting an execution deletes its metrics.
    sdk.delete_pipeline_execution(run_id)
    assert sdk.get_metrics(execution_id=run_id) == []
    assert sdk.get_list_metrics(execution_id=run_id) == []
    for execution_id in (endpoint_id, periodic_id):
        sdk.delete_pipeline_execution(execution_id)


def test_metrics_refuse_bad_values_and_page_exactly(
    gateway: Gateway, metered: Metered, http: requests.Session, tmp_path: Path, sdk: Any
) -> None:
    release = tmp_path / "release"
    release.touch()
    run = sdk.run_pipeline(
        metered.name,
        inputs={"leak_to": str(tmp_path / "leak.json"), "release": str(release), "count": 1},
    )
    execution_id = run["execution_id"]
    api = gateway.api
    cases = [
        ("single-value/bad-name", {"value": 1, "execution_id": execution_id}, 400),
        ("single-value/ok", {"value": "1", "execution_id": execution_id}, 400),
        ("single-value/ok", {"value": True, "execution_id": execution_id}, 400),
        ("single-value/ok", {"value": 1}, 400),
        ("single-value/ok", {"value": 1, "execution_id": "no-such-execution"}, 404),
    ]
    for path, body, status in cases:
        answer = http.put(f"{api}/metrics/{path}", json=body, timeout=30)
        assert answer.status_code == status, (path, body, answer.text)
        assert set(answer.json()) == {"message", "name", "request_id", "additional_data"}
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        answer = http.put(
            f"{api}/metrics/single-value/ok",
            data=f'{{"value": {literal}, "execution_id": "{execution_id}"}}',
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert (answer.status_code, answer.json()["name"]) == (400, "InvalidMetricValue")
    too_many = {"values": [1.0] * 10_001, "execution_id": execution_id}
    assert http.post(f"{api}/metrics/list-values/l", json=too_many, timeout=30).status_code == 413
    mixed = {"values": [1.0, math.pi, "x"], "execution_id": execution_id}
    assert http.post(f"{api}/metrics/list-values/l", json=mixed, timeout=30).status_code == 400
    # Nothing half-written: the refused requests left no metric behind.
    assert sdk.get_metrics(execution_id=execution_id, name="ok") == []
    assert sdk.get_list_metrics(execution_id=execution_id, name="l") == []

    for i in range(3):
        body = {"value": float(i), "execution_id": execution_id}
        assert http.put(f"{api}/metrics/single-value/m{i}", json=body, timeout=30).ok
    pages = [
        http.get(
            f"{api}/metrics/single-value",
            params={"filters[execution_id]": execution_id, "items_per_page": 2, "page": page},
            timeout=30,
        ).json()
        for page in (1, 2, 3)
    ]
    assert [p["total_count"] for p in pages] == [4, 4, 4]  # accuracy and m0..m2
    assert [len(p["metrics"]) for p in pages] == [2, 2, 0]
    names = [m["name"] for p in pages for m in p["metrics"]]
    assert sorted(names) == ["accuracy", "m0", "m1", "m2"]
    bad_page = http.get(f"{api}/metrics/single-value", params={"page": 0}, timeout=30)
    assert bad_page.status_code == 400


def test_the_sdk_inside_low_latency_calls_running_at_once(
    sdk: Any, gateway: Gateway, metered: Metered, tmp_path: Path
) -> None:
    """Two calls in one warm worker at the same time: each has its own execution and token."""
    endpoint = f"{metered.name}-ll"
    sdk.create_deployment(metered.name, endpoint, "endpoint", mode="low_latency")
    release = tmp_path / "release"
    leaks = [tmp_path / "first.json", tmp_path / "second.json"]
    started = [
        sdk.trigger_endpoint(
            endpoint,
            inputs={"leak_to": str(leak), "release": str(release), "count": 2},
            wait_for_completion=False,
        )["execution_id"]
        for leak in leaks
    ]
    leaked = [_wait_for_json(leak) for leak in leaks]  # both calls are running
    assert [found["execution_id"] for found in leaked] == started
    assert leaked[0]["token"] != leaked[1]["token"]
    assert leaked[0]["environment_url"] == gateway.base_url
    release.touch()
    me = sdk.who_am_i()["id"]
    try:
        for execution_id in started:
            outputs = sdk.retrieve_endpoint_results(endpoint, execution_id)["outputs"]
            assert outputs["user"] == me
            assert outputs["stored"] == f"steps/{execution_id}.txt"
            assert set(outputs["denied"].values()) == {403}
            [metric] = sdk.get_metrics(execution_id=execution_id)
            assert (metric["name"], metric["value"], metric["deployment_name"]) == (
                "accuracy",
                0.75,
                endpoint,
            )
        for found in leaked:
            revoked = _refresh(gateway, found["token"])
            assert (revoked.status_code, revoked.json()["name"]) == (401, "StepTokenRevoked")
        stored_text = _stored_text(gateway)
        for found in leaked:
            assert found["token"] not in stored_text
            assert found["token"] not in gateway.log.read_text(errors="replace")
            assert _files_holding(gateway.data_dir, found["token"]) == []
    finally:
        sdk.delete_deployment(endpoint)
        for execution_id in started:
            sdk.delete_pipeline_execution(execution_id)
