"""Input an attacker or a careless client sends: bodies over the limit (refused while they
stream, before authentication), numbers JSON cannot hold, JSON nested to exhaust the stack.
Each answer is the platform's JSON error, with a name that says what was wrong."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from gateway.settings import Settings
from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.test_bad_input import (  # ready: a fixture
    MAIN_FIELDS,
    assert_error,
    ready,  # noqa: F401
)
from tests.gateway.acceptance.test_deployments import create_adder

NameFactory = Callable[[str], str]
LIMIT = Settings().max_body_bytes  # the gateway under test runs on the default
DEEP = "[" * 20_000 + "]" * 20_000  # deeper than Python reads, under the 0.06 MB of values


def _raw_request(gateway: Gateway, head: str, body_chunks: int = 0) -> tuple[int, bytes, int]:
    """Send ``head`` on a socket, then up to ``body_chunks`` chunks of 64 KiB (chunked
    encoding) until an answer comes; return its status, its body and the bytes sent."""
    address = urlsplit(gateway.base_url)
    sent = 0
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode())
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        for _ in range(body_chunks):
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there
            try:
                sock.sendall(chunk)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break  # the gateway reads no more
            sent += len(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_text, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head_text.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += sock.recv(65536)
    return int(head_text.split()[1]), body, sent


_BIG_BODY_ROUTES = [
    pytest.param("POST", "/api/v1/auth/refresh", "application/json", id="refresh"),
    pytest.param("PUT", "/api/v1/environment-variables", "application/json", id="variables"),
    pytest.param("POST", "/api/v1/pipelines", "application/json", id="pipeline-as-json"),
    pytest.param("POST", "/endpoints/anything", "application/json", id="endpoint-call"),
    pytest.param("POST", "/api/v1/pipelines/p/run", "multipart/form-data; boundary=b", id="run"),
]


@pytest.mark.parametrize(("method", "path", "content_type"), _BIG_BODY_ROUTES)
def test_a_declared_length_over_the_limit_is_refused_before_anything_is_read(
    gateway: Gateway, method: str, path: str, content_type: str
) -> None:
    """No credentials and no body sent: the answer comes from the Content-Length alone."""
    length = LIMIT + 1 if content_type == "application/json" else 6 * 1024**3
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: tender\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    status, body, _ = _raw_request(gateway, head)
    error = json.loads(body)
    assert status == 413, error
    assert error["name"] == "BodyTooLarge"
    assert set(error) == {"message", "name", "request_id", "additional_data"}


def test_a_streamed_body_over_the_limit_is_cut_off_as_it_streams(gateway: Gateway) -> None:
    """Chunked, so that its size is not known in advance: the gateway answers 413 once the
    limit is passed, without reading the rest (an unauthenticated refresh read 150 MB)."""
    head = (
        "POST /api/v1/auth/refresh HTTP/1.1\r\nHost: tender\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    status, body, sent = _raw_request(gateway, head, body_chunks=(8 * LIMIT) // 0x10000)
    assert status == 413, body
    assert json.loads(body)["name"] == "BodyTooLarge"
    assert sent < 4 * LIMIT  # the limit, plus what the sockets' buffers held


def test_malformed_and_deep_json_is_invalid_json(gateway: Gateway) -> None:
    for body in ('{"refresh_token": ', DEEP, b'{"refresh_token": "\xff"}'):
        answer = requests.post(
            f"{gateway.api}/auth/refresh",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert_error(answer, 400)
        assert answer.json()["name"] == "InvalidJSON"


def test_a_form_field_over_the_limit_is_inputs_too_large(
    http: requests.Session, gateway: Gateway
) -> None:
    """Starlette holds a text field in memory up to 1 MiB: beyond, 413, never its bare 400."""
    answer = http.post(
        f"{gateway.api}/pipelines/any/run",
        files={"json_inputs": (None, json.dumps({"label": "x" * 2_000_000}))},
    )
    body = assert_error(answer, 413, "send large values as files")
    assert body["name"] == "InputsTooLarge"


# ---- numbers JSON cannot hold, values nested too deep -------------------------------------


def _executions(http: requests.Session, gateway: Gateway, name: str) -> list[Any]:
    listed: list[Any] = http.get(f"{gateway.api}/pipelines/{name}/executions").json()
    return listed


_RUN_INPUTS = [
    ('{"count": NaN}', ["'count'", "NaN"]),
    ('{"count": Infinity}', ["'count'", "Infinity"]),
    ('{"count": -Infinity}', ["'count'", "-Infinity"]),
    ('{"count": 1e999}', ["'count'", "Infinity"]),
    ('{"count": 1, "label": [NaN]}', ["'label'"]),
    ('{"count": ' + DEEP + "}", ["json_inputs", "nested"]),
    ('{"count": 1, "label": ' + "[" * 150 + "]" * 150 + "}", ["'label'", "nested"]),
]


def test_run_values_json_cannot_hold_are_refused_by_name(
    http: requests.Session,
    gateway: Gateway,
    ready: str,  # noqa: F811 - the fixture
) -> None:
    """They answered 500 (and reset the connection) when the compiler encoded them."""
    for json_inputs, words in _RUN_INPUTS:
        answer = http.post(
            f"{gateway.api}/pipelines/{ready}/run", data={"json_inputs": json_inputs}
        )
        assert_error(answer, 400, *words)
    mapping = '[{"pipeline_input_name": "count", "constant_value": NaN}]'
    answer = http.post(f"{gateway.api}/pipelines/{ready}/run", data={"inputs_mapping": mapping})
    assert_error(answer, 400, "'count'", "NaN")
    assert _executions(http, gateway, ready) == []


def test_endpoint_inputs_and_constants_json_cannot_hold_are_refused_by_name(
    gateway: Gateway,
    http: requests.Session,
    sdk: Any,
    pipeline_name: NameFactory,
    tmp_path: Path,
) -> None:
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    token = sdk.create_deployment(name, name, "endpoint")["endpoint_token"]
    call = {"Authorization": f"EndpointToken {token}", "Content-Type": "application/json"}
    for body, words in (
        ('{"a": NaN}', ["'a'", "NaN"]),
        ('{"a": 1e999, "b": 1}', ["'a'", "Infinity"]),
        ('{"a": 1, "b": ' + DEEP + "}", ["nested"]),
    ):
        answer = requests.post(
            f"{gateway.base_url}/endpoints/{name}", data=body, headers=call, timeout=30
        )
        assert_error(answer, 400, *words)
    periodic = json.dumps(
        {
            "pipeline_name": name,
            "name": f"{name}-p",
            "schedule": "0 0 * * *",
            "inputs_mapping": [
                {"pipeline_input_name": "a", "constant_value": float("inf")},
                {"pipeline_input_name": "b", "is_null": True},
            ],
            "outputs_mapping": [{"pipeline_output_name": "total", "is_null": True}],
        }
    )
    answer = http.post(
        f"{gateway.api}/periodic-deployment",
        data=periodic,
        headers={"Content-Type": "application/json"},
    )
    assert_error(answer, 400, "'a'", "Infinity")
    assert len(sdk.list_pipeline_executions(name)) == 0
    assert [d["name"] for d in sdk.list_deployments() if d["pipeline_name"] == name] == [name]


def test_a_pipeline_default_json_cannot_hold_is_refused_by_name(
    http: requests.Session, gateway: Gateway, pipeline_name: NameFactory
) -> None:
    definition = {
        "pipeline_name": pipeline_name("nan"),
        "function_path": MAIN_FIELDS["function_path"],
        "function_name": "main",
        "inputs": [{"name": "count", "data_type": "number", "default_value": float("nan")}],
    }
    answer = http.post(
        f"{gateway.api}/pipelines",
        data=json.dumps(definition),
        headers={"Content-Type": "application/json"},
    )
    assert_error(answer, 400, "'count'", "NaN")
