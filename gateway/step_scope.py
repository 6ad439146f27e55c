"""What a running step's token may do, and for how long.

A step acts for whoever started its execution, but only on its own metrics, the data store and
the environment's endpoints (trigger them, read their results): never on pipelines, deployments'
definitions, tokens, environment variables or other executions. The routes it may call are
listed here, by method and path template; every other route answers 403 to a step, including
routes added later (the list fails closed).

A step token stops working when its execution ends: ``running_execution`` is checked when the
token is traded for an access token and on every request made with that access token.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.auth import Caller
from gateway.engines.errors import ObjectNotFoundError
from gateway.errors import AuthenticationError, ForbiddenError
from gateway.store.records import FINISHED_STATUSES, LOW_LATENCY_TRIGGER, ExecutionRecord

if TYPE_CHECKING:
    from gateway.services import Services

__all__ = [
    "STEP_ROUTES",
    "check_own_execution",
    "check_step_may_read",
    "check_step_route",
    "running_execution",
]

STEP_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        # who the step acts for
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/users/{user_id}"),
        # its own metrics
        ("PUT", "/api/v1/metrics/single-value/{name}"),
        ("POST", "/api/v1/metrics/list-values/{name}"),
        ("GET", "/api/v1/metrics/single-value"),
        ("GET", "/api/v1/metrics/list-values"),
        # the data store
        ("POST", "/api/v1/data-store/information"),
        ("GET", "/api/v1/data-store/list"),
        ("GET", "/api/v1/data-store/upload"),
        ("POST", "/api/v1/data-store/upload/multipart"),
        ("POST", "/api/v1/data-store/upload/multipart/part"),
        ("POST", "/api/v1/data-store/upload/multipart/end"),
        ("POST", "/api/v1/data-store/download"),
        ("DELETE", "/api/v1/data-store/delete"),
        # the environment's endpoints: trigger_endpoint and retrieve_endpoint_results
        ("GET", "/api/v1/deployments/{name}"),
        ("GET", "/api/v1/deployments/{name}/executions/latest"),
        ("POST", "/api/v1/deployments/{name}/executions"),
        ("GET", "/api/v1/executions/{execution_id}/outputs"),
        ("GET", "/api/v1/executions/{execution_id}/outputs/{output_name}"),
        # answered with "tender has no vector database" rather than a 403
        ("GET", "/api/v1/environments/{environment_id}/vector-database"),
    }
)
# How long a step token's trade waits for its execution to be recorded: a CronWorkflow's child
# is recorded by the tracker, which may see it after its first step has started.
_RECORD_WAIT_S = 10.0
_POLL_S = 0.05


def check_step_route(caller: Caller, method: str, path: str) -> None:
    if caller.is_step and (method, path) not in STEP_ROUTES:
        raise ForbiddenError(
            f"a running step's token may not call {method} {path}: it may record its own "
            "metrics, use the data store and call endpoints",
            name="ForbiddenForStep",
        )


def check_own_execution(caller: Caller, execution_id: str) -> None:
    """A step reads and writes the metrics of its own execution only."""
    if caller.is_step and execution_id != caller.execution_id:
        raise ForbiddenError(
            f"a running step's token may only use the metrics of its own execution "
            f"({caller.execution_id!r}), not of {execution_id!r}",
            name="ForbiddenForStep",
        )


def check_step_may_read(caller: Caller, record: ExecutionRecord) -> None:
    """A step reads the results of endpoint executions, which it may have triggered."""
    if caller.is_step and record.trigger not in ("endpoint", LOW_LATENCY_TRIGGER):
        raise ForbiddenError(
            f"a running step's token may only read the results of endpoint executions, and "
            f"{record.id!r} is a {record.trigger} execution",
            name="ForbiddenForStep",
        )


async def running_execution(
    services: Services, execution_id: str, *, wait_for_record: bool = False
) -> ExecutionRecord:
    """The record of the unfinished execution a step token was made for; otherwise the token
    no longer works (AuthenticationError). ``wait_for_record`` waits, while the engine runs
    the Workflow, for a record not written yet."""
    record = await services.in_store(services.executions.get, execution_id)
    if record is None and wait_for_record and await _is_running(services, execution_id):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RECORD_WAIT_S
        while record is None and loop.time() < deadline:
            await asyncio.sleep(_POLL_S)
            record = await services.in_store(services.executions.get, execution_id)
    if record is None or record.is_finished:
        raise AuthenticationError(
            f"execution {execution_id!r} has ended or does not exist: its step token no "
            "longer works",
            name="StepTokenRevoked",
        )
    return record


async def _is_running(services: Services, execution_id: str) -> bool:
    try:
        workflow = await services.engine.get_workflow(execution_id)
    except ObjectNotFoundError:
        return False
    phase = (workflow.get("status") or {}).get("phase") or "Pending"
    return phase not in FINISHED_STATUSES
