"""The routes a step's token may call exist, and every other route refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.auth import Caller
from gateway.errors import ForbiddenError
from gateway.settings import Settings
from gateway.step_scope import STEP_ROUTES, check_own_execution, check_step_route

STEP = Caller("user-1", "run-1")


def _routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves, read from its OpenAPI description
    (FastAPI keeps included routers nested, so ``app.routes`` does not list them)."""
    paths = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    return {(method.upper(), path) for path, methods in paths.items() for method in methods}


def test_every_step_route_is_a_route_of_the_app(tmp_path: Path) -> None:
    missing = STEP_ROUTES - _routes(tmp_path)
    assert not missing


def test_management_routes_refuse_a_step(tmp_path: Path) -> None:
    refused = _routes(tmp_path) - STEP_ROUTES
    for method, path in [
        ("DELETE", "/api/v1/pipelines/{name}"),
        ("GET", "/api/v1/environment-variables"),
        ("POST", "/api/v1/endpoints/{name}/generate-new-token"),
        ("POST", "/api/v1/pipelines/{name}/run"),
        ("PATCH", "/api/v1/deployments/{name}"),
    ]:
        assert (method, path) in refused
        with pytest.raises(ForbiddenError):
            check_step_route(STEP, method, path)
    check_step_route(Caller("user-1"), "DELETE", "/api/v1/pipelines/{name}")  # a user may


def test_a_step_uses_the_metrics_of_its_own_execution_only() -> None:
    check_own_execution(STEP, "run-1")
    check_own_execution(Caller("user-1"), "run-2")
    with pytest.raises(ForbiddenError):
        check_own_execution(STEP, "run-2")
