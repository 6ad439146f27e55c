"""Endpoints as plain HTTP clients call them: the platform's requests examples, curl -L, and
every refusal (a JSON 4xx that starts nothing)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.folders import GATED, write_folder
from tests.gateway.acceptance.test_deployments import T, create_adder, create_reverse

NameFactory = Callable[[str], str]


@pytest.fixture
def adder(sdk: Any, pipeline_name: NameFactory, tmp_path: Path) -> tuple[str, str]:
    """An endpoint ``a + b`` (b optional): its name (also its path) and its token."""
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    return name, sdk.create_deployment(name, name, "endpoint")["endpoint_token"]


def _executions(sdk: Any, name: str) -> int:
    return len(sdk.list_pipeline_executions(name))


def test_the_json_requests_example(gateway: Gateway, adder: tuple[str, str]) -> None:
    name, ENDPOINT_TOKEN = adder  # noqa: N806 - as the platform's example spells it
    r = requests.post(
        f"{gateway.base_url}/endpoints/{name}",
        headers={"Authorization": "EndpointToken " + ENDPOINT_TOKEN},
        json={"a": 40, "b": 2},
        timeout=60,
    )

    assert r.status_code == 200, r.text
    assert r.history[0].status_code == 303
    assert r.json() == {
        "execution_id": r.history[0].json()["execution_id"],
        "outputs": {"total": {"value": 42}},
    }


def test_the_files_requests_example(
    gateway: Gateway, sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("reverse")
    create_reverse(sdk, name, tmp_path)
    ENDPOINT_TOKEN = sdk.create_deployment(  # noqa: N806
        name,
        name,
        "endpoint",
        inputs_mapping=[InputSource(pipeline_input_name="document", endpoint_input_name="data")],
    )["endpoint_token"]
    (tmp_path / "data.csv").write_bytes(b"a,b\n1,2\n")

    with (tmp_path / "data.csv").open("rb") as data:
        r = requests.post(
            f"{gateway.base_url}/endpoints/{name}",
            headers={"Authorization": "EndpointToken " + ENDPOINT_TOKEN},
            files={"data": data},
            timeout=60,
        )

    assert r.status_code == 200, r.text
    outputs = r.json()["outputs"]
    assert outputs["size"] == {"value": 8}
    url = outputs["reversed"]["url"]
    assert url.startswith(gateway.base_url + "/")
    assert "?" not in url
    downloaded = requests.get(f"{url}?token={ENDPOINT_TOKEN}", timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == b"\n2,1\nb,a"
    assert requests.get(url, timeout=30).status_code == 401


def test_a_call_answers_303_to_results_that_long_poll(
    gateway: Gateway, adder: tuple[str, str]
) -> None:
    name, token = adder
    posted = requests.post(
        f"{gateway.base_url}/endpoints/{name}",
        headers={"Authorization": f"EndpointToken {token}"},
        json={"a": 1},
        allow_redirects=False,
        timeout=30,
    )

    assert posted.status_code == 303
    execution_id = posted.json()["execution_id"]
    assert posted.headers["Location"] == f"/endpoints/v1/{name}/executions/{execution_id}"
    results = requests.get(
        f"{gateway.base_url}/endpoints/v1/{name}/executions/{execution_id}",
        params={"token": token},
        timeout=60,
    )
    assert results.json() == {"execution_id": execution_id, "outputs": {"total": {"value": 2}}}


def test_curl_follows_the_call_to_its_outputs(gateway: Gateway, adder: tuple[str, str]) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed on this machine")
    name, token = adder
    done = subprocess.run(
        [
            curl,
            "-sS",
            "-L",
            f"{gateway.base_url}/endpoints/{name}",
            "-H",
            f"Authorization: EndpointToken {token}",
            "-H",
            "Content-Type: application/json; charset=utf-8",
            "-d",
            '{"a": 20, "b": 22}',
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"total": {"value": 42}}


def _call(gateway: Gateway, path: str, token: str | None, **kwargs: Any) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"EndpointToken {token}"}
    return requests.post(
        f"{gateway.base_url}/endpoints/{path}",
        headers=headers,
        allow_redirects=False,
        timeout=30,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("token", "body", "status", "error"),
    [
        (None, {"a": 1}, 401, "MissingEndpointToken"),
        ("wrong-token-value", {"a": 1}, 403, "InvalidEndpointToken"),
        ("GOOD", {}, 400, "MissingInput"),
        ("GOOD", {"a": "one"}, 400, "InvalidInputType"),
        ("GOOD", {"a": 1, "c": 2}, 400, "UnknownInput"),
        ("GOOD", {"a": 1, "b": "x" * 61_000}, 413, "InputsTooLarge"),
        ("GOOD", [1, 2], 400, "InvalidInputs"),
    ],
)
def test_bad_calls_are_refused_and_start_nothing(
    gateway: Gateway,
    *,
    sdk: Any,
    adder: tuple[str, str],
    token: str | None,
    body: Any,
    status: int,
    error: str,
) -> None:
    name, good = adder
    answer = _call(gateway, name, good if token == "GOOD" else token, json=body)

    assert answer.status_code == status, answer.text
    assert answer.json()["name"] == error
    assert _executions(sdk, name) == 0


def test_an_unknown_endpoint_is_404(gateway: Gateway) -> None:
    answer = _call(gateway, "no-such-endpoint", "whatever-token", json={})
    assert answer.status_code == 404
    assert answer.json()["name"] == "EndpointNotFound"


def test_multipart_text_parts_fall_back_to_raw_strings(
    gateway: Gateway, sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    # A hand-written form: "a" holds JSON (a number), "b" a word that is not JSON.
    folder = write_folder(
        tmp_path / "cat", {"src/cat.py": "def cat(a, b):\n    return {'r': f'{a}{b}'}\n"}
    )
    name = pipeline_name("cat")
    sdk.create_pipeline(
        name,
        function_path="src/cat.py",
        function_name="cat",
        container_config={"local_folder": str(folder)},
        inputs=[Input("a", T.NUMBER), Input("b", T.STRING)],
        outputs=[Output("r", T.STRING)],
    )
    token = sdk.create_deployment(name, name, "endpoint")["endpoint_token"]

    answer = requests.post(
        f"{gateway.base_url}/endpoints/{name}",
        headers={"Authorization": f"EndpointToken {token}"},
        files={"a": (None, "3"), "b": (None, "word")},
        timeout=60,
    )

    assert answer.json()["outputs"] == {"r": {"value": "3word"}}


def test_one_execution_at_a_time_when_parallel_executions_are_off(
    gateway: Gateway, sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "gated", {"src/gated.py": GATED})
    name = pipeline_name("gated")
    sdk.create_pipeline(
        name,
        function_path="src/gated.py",
        function_name="gated",
        container_config={"local_folder": str(folder)},
        inputs=[Input("release", T.STRING), Input("number", T.NUMBER)],
        outputs=[Output("doubled", T.NUMBER)],
    )
    token = sdk.create_deployment(name, name, "endpoint", enable_parallel_executions=False)[
        "endpoint_token"
    ]
    release = tmp_path / "release"

    first = _call(gateway, name, token, json={"release": str(release), "number": 1})
    second = _call(gateway, name, token, json={"release": str(release), "number": 2})
    release.touch()

    assert first.status_code == 303
    assert second.status_code == 409
    assert second.json()["name"] == "ExecutionInProgress"
    assert second.json()["additional_data"] == {"execution_id": first.json()["execution_id"]}
    assert sdk.retrieve_endpoint_results(name, first.json()["execution_id"])["outputs"] == {
        "doubled": 2
    }
    third = _call(gateway, name, token, json={"release": str(release), "number": 3})
    assert third.status_code == 303


def _create(
    http: requests.Session, gateway: Gateway, rule: str, body: dict[str, Any]
) -> requests.Response:
    url = f"{gateway.api}/endpoints" if rule == "endpoint" else f"{gateway.api}/periodic-deployment"
    return http.post(url, json=body, timeout=30)


@pytest.mark.parametrize(
    ("rule", "body", "status", "error"),
    [
        ("periodic", {"schedule": "61 * * * *"}, 400, "InvalidDefinition"),
        ("periodic", {"schedule": "every minute"}, 400, "InvalidDefinition"),
        ("periodic", {"schedule": "* * * * *"}, 400, "InvalidDefinition"),  # a is unmapped
        ("endpoint", {"name": "Not_A_Name"}, 400, "InvalidDefinition"),
        ("endpoint", {"endpoint_url_path": "a/b"}, 400, "InvalidEndpointUrlPath"),
        ("endpoint", {"endpoint_token": "short"}, 400, "InvalidEndpointToken"),
        ("endpoint", {"endpoint_token": "not url safe?&"}, 400, "InvalidEndpointToken"),
        ("endpoint", {"mode": "low_latency", "gpu_request": 1}, 400, "NotSupported"),
        ("endpoint", {"mode": "low_latency", "ram_request": "1 lot"}, 400, "InvalidDefinition"),
        ("endpoint", {"pipeline_name": "no-such-pipeline"}, 404, "PipelineNotFound"),
    ],
)
def test_bad_deployments_are_refused_and_create_nothing(
    gateway: Gateway,
    *,
    http: requests.Session,
    adder: tuple[str, str],
    rule: str,
    body: dict[str, Any],
    status: int,
    error: str,
) -> None:
    pipeline, _ = adder
    answer = _create(
        http, gateway, rule, {"pipeline_name": pipeline, "name": f"{pipeline}-x", **body}
    )

    assert answer.status_code == status, answer.text
    assert answer.json()["name"] == error
    names = [d["name"] for d in http.get(f"{gateway.api}/deployments", timeout=30).json()]
    assert f"{pipeline}-x" not in names


def test_a_taken_name_or_path_is_a_conflict(
    gateway: Gateway, http: requests.Session, adder: tuple[str, str]
) -> None:
    pipeline, token = adder
    same_name = _create(http, gateway, "endpoint", {"pipeline_name": pipeline, "name": pipeline})
    same_path = _create(
        http,
        gateway,
        "endpoint",
        {"pipeline_name": pipeline, "name": f"{pipeline}-2", "endpoint_url_path": pipeline},
    )

    assert (same_name.status_code, same_path.status_code) == (409, 409)
    read = http.get(f"{gateway.api}/deployments/{pipeline}", timeout=30).json()
    assert read["endpoint_token"] == token
    assert http.get(f"{gateway.api}/deployments/{pipeline}-2", timeout=30).status_code == 404


def test_deployment_routes_need_the_sdk_token(gateway: Gateway, adder: tuple[str, str]) -> None:
    name, token = adder
    for method, path in [
        ("GET", f"/deployments/{name}"),
        ("GET", "/deployments"),
        ("POST", f"/deployments/{name}/executions"),
        ("POST", f"/endpoints/{name}/generate-new-token"),
    ]:
        answer = requests.request(
            method,
            f"{gateway.api}{path}",
            headers={"Authorization": f"EndpointToken {token}"},
            timeout=30,
        )
        assert answer.status_code == 401, (method, path)


def test_a_periodic_deployment_needs_every_output_mapped(
    gateway: Gateway, http: requests.Session, adder: tuple[str, str]
) -> None:
    pipeline, _ = adder
    body = {
        "pipeline_name": pipeline,
        "name": f"{pipeline}-cron",
        "schedule": "0 0 * * *",
        "inputs_mapping": [
            {"pipeline_input_name": "a", "constant_value": 1},
            {"pipeline_input_name": "b", "is_null": True},
        ],
    }
    refused = _create(http, gateway, "periodic", body)
    mapped = [OutputDestination(pipeline_output_name="total", is_null=True).to_dict()]
    created = _create(http, gateway, "periodic", {**body, "outputs_mapping": mapped})

    assert refused.status_code == 400
    assert refused.json()["additional_data"]["rule"] == "unmapped_output"
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "up"
