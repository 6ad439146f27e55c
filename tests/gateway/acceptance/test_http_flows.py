"""The same journey in plain HTTP, as curl or ``requests`` users make it (craft-api.md 5.2, 5.3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import requests

from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.folders import GATED, MAPPED, echo_files, tar_gz

NameFactory = Callable[[str], str]
_MAX_POLLS = 200  # each poll is held by the server; this only stops a broken server looping

ECHO_FIELDS = {
    "function_path": "src/echo.py",
    "function_name": "echo",
    "container_config[included_folders][0]": "lib",
    "inputs[0][name]": "text",
    "inputs[0][data_type]": "string",
    "inputs[1][name]": "number",
    "inputs[1][data_type]": "number",
    "inputs[1][is_required]": "False",
    "inputs[1][default_value]": "1.5",
    "inputs[2][name]": "flag",
    "inputs[2][data_type]": "boolean",
    "inputs[3][name]": "data",
    "inputs[3][data_type]": "json",
    "inputs[4][name]": "items",
    "inputs[4][data_type]": "array",
    "inputs[5][name]": "document",
    "inputs[5][data_type]": "file",
    "outputs[0][name]": "text",
    "outputs[0][data_type]": "string",
    "outputs[1][name]": "number",
    "outputs[1][data_type]": "number",
    "outputs[2][name]": "flag",
    "outputs[2][data_type]": "boolean",
    "outputs[3][name]": "data",
    "outputs[3][data_type]": "json",
    "outputs[4][name]": "items",
    "outputs[4][data_type]": "array",
    "outputs[5][name]": "document",
    "outputs[5][data_type]": "file",
}


def _json(answer: requests.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    return answer.json()


def _create(
    http: requests.Session, gateway: Gateway, name: str, fields: dict[str, str], code: bytes
) -> dict[str, Any]:
    """POST the pipeline as the SDK does with a local folder, then wait until it is built."""
    answer = http.post(
        f"{gateway.api}/pipelines",
        data={"pipeline_name": name, **fields},
        files={"step_file": ("step_file", code)},
        allow_redirects=False,
    )
    created = _json(answer)
    assert created["creation_info"]["status"] in ("creation_pending", "ready")
    for _ in range(_MAX_POLLS):
        pipeline: dict[str, Any] = _json(
            http.get(
                f"{gateway.api}/pipelines/{name}",
                params={"wait_for_completion": "true"},
                allow_redirects=False,
            )
        )
        if pipeline["creation_info"]["status"] != "creation_pending":
            return pipeline
    raise AssertionError(f"pipeline {name} still creation_pending after {_MAX_POLLS} polls")


def _outputs(http: requests.Session, gateway: Gateway, execution_id: str) -> requests.Response:
    """The outputs long-poll as the SDK runs it: the same URL again while it answers 307."""
    url = f"{gateway.api}/executions/{execution_id}/outputs"
    for _ in range(_MAX_POLLS):
        answer = http.get(url, params={"wait_for_completion": "true"}, allow_redirects=False)
        if answer.status_code != 307:
            return answer
    raise AssertionError(f"execution {execution_id} still running after {_MAX_POLLS} polls")


def _echo_code() -> bytes:
    return tar_gz({path: text.encode() for path, text in echo_files().items()})


def test_auth_refresh_gives_a_bearer_jwt_the_api_accepts(gateway: Gateway) -> None:
    answer = requests.post(
        f"{gateway.api}/auth/refresh", json={"refresh_token": gateway.token}, timeout=30
    )
    token = _json(answer)["access_token"]

    # What the SDK reads, without checking the signature (craft-api.md section 2.2).
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] > 120
    listed = requests.get(
        f"{gateway.api}/pipelines", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert isinstance(_json(listed), list)


def test_create_run_read_and_delete_over_http(
    http: requests.Session, gateway: Gateway, pipeline_name: NameFactory
) -> None:
    name = pipeline_name("echo")
    pipeline = _create(http, gateway, name, ECHO_FIELDS, _echo_code())
    assert pipeline["creation_info"]["status"] == "ready"
    assert pipeline["creation_info"]["origin"] == "local"
    inputs = pipeline["parameters"]["inputs"]
    assert inputs[1] == {**inputs[1], "is_required": False, "default_value": 1.5}
    latest = http.get(f"{gateway.api}/pipelines/{name}/executions/latest")
    assert latest.status_code == 204 or latest.json() in (None, {})

    run = http.post(
        f"{gateway.api}/pipelines/{name}/run",
        data={
            "json_inputs": json.dumps(
                {"text": "hi", "flag": True, "data": {"a": None}, "items": [[1], "x"]}
            )
        },
        files={"document": ("doc.bin", b"12345")},
        allow_redirects=False,
    )
    execution_id = _json(run)["execution_id"]

    outputs = _json(_outputs(http, gateway, execution_id))["outputs"]
    assert {
        o["pipeline_output_name"]: o.get("value") for o in outputs if o["data_type"] != "file"
    } == {
        "text": "HI!",
        "number": 3.0,  # the default value, doubled
        "flag": False,
        "data": {"got": {"a": None}},
        "items": [[1], "x", 2],
    }
    assert all(o["mapping_type"] == "run" for o in outputs)
    document = http.get(f"{gateway.api}/executions/{execution_id}/outputs/document")
    assert document.status_code == 200
    assert document.headers["content-type"] == "application/octet-stream"
    assert document.content == b"54321"
    text = http.get(f"{gateway.api}/executions/{execution_id}/outputs/text")
    assert _json(text) == "HI!"
    given = http.get(f"{gateway.api}/executions/{execution_id}/inputs/document")
    assert given.headers["content-type"] == "application/octet-stream"
    assert given.content == b"12345"
    assert _json(http.get(f"{gateway.api}/executions/{execution_id}/inputs/items")) == [[1], "x"]

    execution = _json(http.get(f"{gateway.api}/executions/{execution_id}"))
    assert execution["status"] == "Succeeded"
    assert execution["inputs"][0] == {
        "pipeline_input_name": "text",
        "data_type": "string",
        "mapping_type": "run",
        "mapping_value": {"run_input_name": "text"},
        "value": "hi",
    }
    assert execution["inputs"][1]["value"] == 1.5
    assert execution["outputs"][0] == {
        "pipeline_output_name": "text",
        "data_type": "string",
        "mapping_type": "run",
        "mapping_value": {"run_output_name": "text"},
        "value": "HI!",
    }
    latest = _json(http.get(f"{gateway.api}/pipelines/{name}/executions/latest"))
    assert latest == {"execution_id": execution_id}
    listed = _json(http.get(f"{gateway.api}/pipelines/{name}/executions"))
    assert [e["execution_id"] for e in listed] == [execution_id]

    logs = _json(http.post(f"{gateway.api}/executions/{execution_id}/logs", json={}))
    assert isinstance(logs, list)
    assert all(isinstance(group, list) for group in logs)
    assert "echo got 'hi'" in [line["message"] for line in logs[0]]
    limited = _json(http.post(f"{gateway.api}/executions/{execution_id}/logs", json={"limit": 0}))
    assert limited == [[]]

    deleted = http.delete(f"{gateway.api}/executions/{execution_id}")
    assert _json(deleted) == {"execution_id": execution_id}
    gone = http.get(f"{gateway.api}/executions/{execution_id}")
    assert _json(gone, 404)["name"]
    assert _json(http.get(f"{gateway.api}/pipelines/{name}/executions")) == []

    removed = http.delete(
        f"{gateway.api}/pipelines/{name}", params={"force_deployments_deletion": "False"}
    )
    assert _json(removed) == {"pipeline": {"name": name}, "deployments": []}
    assert _json(http.get(f"{gateway.api}/pipelines/{name}"), 404)["name"]
    assert name not in [p["pipeline_name"] for p in _json(http.get(f"{gateway.api}/pipelines"))]


def test_the_outputs_long_poll_answers_307_until_the_execution_ends(
    http: requests.Session, gateway: Gateway, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("gated")
    fields = {
        "function_path": "src/gated.py",
        "function_name": "gated",
        "inputs[0][name]": "release",
        "inputs[0][data_type]": "string",
        "inputs[1][name]": "number",
        "inputs[1][data_type]": "number",
        "outputs[0][name]": "doubled",
        "outputs[0][data_type]": "number",
    }
    _create(http, gateway, name, fields, tar_gz({"src/gated.py": GATED.encode()}))
    release = tmp_path / "release"
    run = http.post(
        f"{gateway.api}/pipelines/{name}/run",
        data={"json_inputs": json.dumps({"release": str(release), "number": 21})},
    )
    execution_id = _json(run)["execution_id"]
    url = f"{gateway.api}/executions/{execution_id}/outputs?wait_for_completion=true"

    held = http.get(url, allow_redirects=False)

    # Not finished: the function waits for `release`. A 307 to the same URL, with a JSON body.
    assert held.status_code == 307, held.text
    assert held.headers["location"] == url
    assert held.json()["status"] in ("Pending", "Running")
    assert _json(http.get(f"{gateway.api}/executions/{execution_id}"))["outputs"] == [
        {
            "pipeline_output_name": "doubled",
            "data_type": "number",
            "mapping_type": "run",
            "mapping_value": {"run_output_name": "doubled"},
        }
    ]
    release.touch()
    outputs = _json(_outputs(http, gateway, execution_id))["outputs"]
    [doubled] = outputs
    assert doubled == {
        **doubled,
        "pipeline_output_name": "doubled",
        "data_type": "number",
        "mapping_type": "run",
        "value": 42,
    }


def test_run_with_mappings_over_http(
    http: requests.Session, gateway: Gateway, pipeline_name: NameFactory
) -> None:
    name = pipeline_name("mapped")
    fields = {
        "function_path": "src/describe.py",
        "function_name": "describe",
        "inputs[0][name]": "label",
        "inputs[0][data_type]": "string",
        "inputs[1][name]": "count",
        "inputs[1][data_type]": "number",
        "inputs[2][name]": "flag",
        "inputs[2][data_type]": "boolean",
        "inputs[3][name]": "extra",
        "inputs[3][data_type]": "json",
        "outputs[0][name]": "seen",
        "outputs[0][data_type]": "json",
        "outputs[1][name]": "dropped",
        "outputs[1][data_type]": "number",
    }
    _create(http, gateway, name, fields, tar_gz({"src/describe.py": MAPPED.encode()}))

    run = http.post(
        f"{gateway.api}/pipelines/{name}/run",
        data={
            "json_inputs": json.dumps({"extra": 7}),
            "inputs_mapping": json.dumps(
                [
                    {"pipeline_input_name": "label", "constant_value": ""},
                    {"pipeline_input_name": "count", "constant_value": 0},
                    {"pipeline_input_name": "flag", "is_null": True},
                ]
            ),
            "outputs_mapping": json.dumps([{"pipeline_output_name": "dropped", "is_null": True}]),
        },
    )
    execution_id = _json(run)["execution_id"]

    outputs = _json(_outputs(http, gateway, execution_id))["outputs"]
    assert outputs[0]["value"] == {"label": "", "count": 0, "flag": None, "extra": 7}
    assert outputs[1] == {**outputs[1], "mapping_type": "is_null"}
    assert outputs[1].get("value") is None
    execution = _json(http.get(f"{gateway.api}/executions/{execution_id}"))
    assert [(i["mapping_type"], i["mapping_value"]) for i in execution["inputs"]] == [
        ("constant", {"constant_value": ""}),
        ("constant", {"constant_value": 0}),
        ("is_null", {"is_null": True}),
        ("run", {"run_input_name": "extra"}),
    ]
    assert execution["outputs"][1]["mapping_value"] == {"is_null": True}


def test_the_health_route_answers_without_a_token_and_says_nothing_else(gateway: Gateway) -> None:
    answer = requests.get(f"{gateway.base_url}/healthz", timeout=30)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    # Only that path: the API around it still wants a token.
    assert requests.get(f"{gateway.base_url}/healthz/", timeout=30).status_code == 404
    assert requests.get(f"{gateway.api}/healthz", timeout=30).status_code == 404
