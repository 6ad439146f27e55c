"""Endpoint tokens and deployment definitions, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from compiler import CompileError
from gateway.deployments.definitions import parse_deployment
from gateway.deployments.tokens import (
    check_endpoint_token,
    hash_endpoint_token,
    new_endpoint_token,
    read_user_token,
)
from gateway.errors import (
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    NotSupportedError,
)
from gateway.store.records import DeploymentRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _record(token: str) -> DeploymentRecord:
    return DeploymentRecord(
        name="d",
        pipeline_name="p",
        execution_rule="endpoint",
        definition={},
        endpoint_url_path="d",
        endpoint_token=token,
        endpoint_token_hash=hash_endpoint_token(token),
        status="up",
        is_enabled=True,
        created_by="u",
        created_at=NOW,
        updated_by="u",
        updated_at=NOW,
    )


def test_generated_tokens_are_url_safe_and_distinct() -> None:
    tokens = {new_endpoint_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(read_user_token(t) == t for t in tokens)


@pytest.mark.parametrize("token", ["short", "has space!", "a/b/c/d/e", "x?token=yyyy", "é" * 10])
def test_user_tokens_must_be_url_safe(token: str) -> None:
    with pytest.raises(BadRequestError):
        read_user_token(token)


def test_only_the_current_token_opens_the_endpoint() -> None:
    record = _record("the-right-token")
    check_endpoint_token(record, "the-right-token")
    with pytest.raises(AuthenticationError):
        check_endpoint_token(record, None)
    with pytest.raises(ForbiddenError):
        check_endpoint_token(record, "the-wrong-token")


def test_the_url_gives_the_rule_and_the_path_defaults_to_the_name() -> None:
    endpoint = parse_deployment({"pipeline_name": "p", "name": "d", "mode": "elastic"}, "endpoint")
    assert (endpoint.execution_rule, endpoint.endpoint_url_path) == ("endpoint", "d")
    periodic = parse_deployment(
        {"pipeline_name": "p", "name": "d", "schedule": "0 * * * *"}, "periodic"
    )
    assert (periodic.execution_rule, periodic.endpoint_url_path) == ("periodic", None)


@pytest.mark.parametrize(
    ("body", "rule", "error"),
    [
        ({"mode": "low_latency", "schedule": "0 * * * *"}, "periodic", NotSupportedError),
        ({"mode": "low_latency", "gpu_request": 1}, "endpoint", NotSupportedError),
        ({"mode": "low_latency", "ram_request": "lots"}, "endpoint", CompileError),
        (
            {"mode": "low_latency", "max_parallel_executions_per_pod": 0},
            "endpoint",
            BadRequestError,
        ),
        ({"schedule": "0 * * * *", "endpoint_url_path": "x"}, "periodic", BadRequestError),
        ({"endpoint_url_path": "a b"}, "endpoint", BadRequestError),
        ([], "endpoint", BadRequestError),
    ],
)
def test_bad_definitions_are_refused(body: object, rule: str, error: type[Exception]) -> None:
    if isinstance(body, dict):
        body = {"pipeline_name": "p", "name": "d", **body}
    with pytest.raises(error):
        parse_deployment(body, rule)
