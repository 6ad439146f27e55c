"""The API's catalogue, from the served ``/openapi.json``: every route answers 401 without
credentials except the documented public ones, and every route reads its body within a limit.

Public (README, "Authentication"): ``POST /api/v1/auth/refresh`` (it takes the SDK token),
``GET /api/v1/environment-info`` (the SDK reads it before it has a token), ``GET /healthz``
(probes),
the endpoint routes under ``/endpoints/`` (an endpoint token), the data store's signed URLs
``/data-store/signed`` (their signature), and the documentation ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from gateway.app import create_app
from gateway.bodies import LimitedRoute
from gateway.settings import Settings
from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.test_bad_input import assert_error

PUBLIC = {
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/environment-info"),
    ("GET", "/healthz"),
    ("POST", "/endpoints/{path}"),
    ("GET", "/endpoints/v1/{path}/executions/{execution_id}"),
    ("GET", "/endpoints/v1/{path}/executions/{execution_id}/outputs/{output_name}"),
    ("GET", "/data-store/signed"),
    ("POST", "/data-store/signed"),
    ("PUT", "/data-store/signed"),
}
ERROR_KEYS = {"message", "name", "request_id", "additional_data"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "patch", "delete")
    )


@pytest.fixture(scope="module")
def document(gateway: Gateway) -> dict[str, Any]:
    answer = requests.get(f"{gateway.base_url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def test_the_docs_and_the_document_are_served(gateway: Gateway, document: dict[str, Any]) -> None:
    docs = requests.get(f"{gateway.base_url}/docs", timeout=30)
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert document["openapi"].startswith("3.")
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == ERROR_KEYS
    assert set(_operations(document)) >= PUBLIC
    assert len(_operations(document)) >= 40


def test_every_route_but_the_public_ones_answers_401_without_credentials(
    gateway: Gateway, document: dict[str, Any]
) -> None:
    protected = [op for op in _operations(document) if op not in PUBLIC]
    for method, path in protected:
        url = gateway.base_url + re.sub(r"\{[^}]+\}", "x", path)
        answer = requests.request(method, url, allow_redirects=False, timeout=30)
        body = assert_error(answer, 401)
        assert body["name"] == "MissingToken", (method, path, body)
        assert document["paths"][path][method.lower()]["security"] == [{"HTTPBearer": []}]


def test_the_public_routes_answer_without_credentials_but_give_nothing(
    gateway: Gateway, document: dict[str, Any]
) -> None:
    for method, path in sorted(PUBLIC):
        url = gateway.base_url + re.sub(r"\{[^}]+\}", "x", path)
        answer = requests.request(method, url, allow_redirects=False, timeout=30)
        answers = path in ("/api/v1/environment-info", "/healthz")
        expected = (200,) if answers else (400, 403, 404)
        assert answer.status_code in expected, (method, path, answer.status_code)


def _api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI >= 0.160 keeps an included router whole, behind an _IncludedRouter.
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def test_every_documented_route_is_a_limited_route_and_every_route_is_documented(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = list(_api_routes(app.routes))
    assert all(isinstance(route, LimitedRoute) for route in routes), [
        route.path for route in routes if not isinstance(route, LimitedRoute)
    ]
    documented = set(_operations(app.openapi()))
    served = {(method, route.path) for route in routes for method in route.methods}
    assert len(routes) >= 40
    assert served == documented
