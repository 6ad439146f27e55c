"""Endpoints as any HTTP client calls them, with the endpoint's token instead of the SDK's.

``POST /endpoints/{path}`` answers ``303 See Other`` to the results, so that ``curl -L`` and
``requests`` end on the outputs; the results URL long-polls. The token travels in
``Authorization: EndpointToken <token>`` or, as the SDK sends it to the results, in ``?token=``;
the Location carries no token: clients resend the header to the same host when they follow it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from gateway.bodies import UploadRoute
from gateway.deployments import (
    EndpointGates,
    check_endpoint_token,
    deployments_of,
    endpoint_results,
    read_endpoint_call,
    trigger_endpoint,
)
from gateway.deployments.results import endpoint_output
from gateway.deps import ServicesDep, TrackerDep
from gateway.errors import ConflictError, NotFoundError
from gateway.failures import failure_error
from gateway.openapi import ENDPOINT_INPUTS, ENDPOINT_TOKEN, TOO_MANY_CALLS
from gateway.responses import JSON
from gateway.services import Services
from gateway.store.records import DeploymentRecord, ExecutionRecord
from gateway.tracking import ExecutionTracker

__all__ = ["router"]

router = APIRouter(prefix="/endpoints", route_class=UploadRoute)

Token = Annotated[str | None, Query(alias="token")]


async def _gates(request: Request) -> EndpointGates:
    gates: EndpointGates = request.app.state.endpoint_gates
    return gates


async def _endpoint(
    services: Services, path: str, request: Request, query_token: str | None
) -> DeploymentRecord:
    """The endpoint at ``path`` (404), once the caller's token is its own (401, 403)."""
    record: DeploymentRecord | None = await services.in_store(
        deployments_of(services).get_by_path, path
    )
    if record is None:
        raise NotFoundError(f"no endpoint at {path!r}", name="EndpointNotFound")
    scheme, _, header_token = request.headers.get("authorization", "").partition(" ")
    token = header_token.strip() if scheme.lower() == "endpointtoken" else query_token
    check_endpoint_token(record, token)
    return record


async def _execution(
    tracker: ExecutionTracker, record: DeploymentRecord, execution_id: str
) -> ExecutionRecord:
    try:
        execution = await tracker.get(execution_id)
    except NotFoundError:
        execution = None
    if execution is None or execution.deployment_name != record.name:
        raise NotFoundError(
            f"endpoint {record.endpoint_url_path!r} has no execution {execution_id!r}",
            name="ExecutionNotFound",
        )
    return execution


@router.post(
    "/{path}",
    openapi_extra={**ENDPOINT_INPUTS, "security": ENDPOINT_TOKEN},
    responses={429: TOO_MANY_CALLS},
)
async def call(
    path: str,
    request: Request,
    services: ServicesDep,
    gates: Annotated[EndpointGates, Depends(_gates)],
    token: Token = None,
) -> Response:
    record = await _endpoint(services, path, request, token)
    execution = await trigger_endpoint(services, gates, record, await read_endpoint_call(request))
    location = f"/endpoints/v1/{path}/executions/{execution.id}"
    return JSON({"execution_id": execution.id}, status_code=303, headers={"Location": location})


@router.get("/v1/{path}/executions/{execution_id}", openapi_extra={"security": ENDPOINT_TOKEN})
async def results(
    path: str,
    execution_id: str,
    *,
    request: Request,
    services: ServicesDep,
    tracker: TrackerDep,
    token: Token = None,
) -> Response:
    """Held until the execution ends or the long-poll time passed, then 307 to this same URL
    (``requests`` follows up to 30 of them: about 15 minutes at 30 s a hold)."""
    record = await _endpoint(services, path, request, token)
    execution = await _execution(tracker, record, execution_id)
    execution = await tracker.wait(execution.id, services.settings.long_poll_s)
    if not execution.is_finished:
        body = {"execution_id": execution.id, "status": execution.status}
        return JSON(body, status_code=307, headers={"Location": str(request.url)})
    if execution.status in ("Failed", "Error"):
        raise await failure_error(services, execution)
    outputs: dict[str, Any] = await endpoint_results(services, execution, path)
    return JSON({"execution_id": execution.id, "outputs": outputs})


@router.get(
    "/v1/{path}/executions/{execution_id}/outputs/{output_name}",
    openapi_extra={"security": ENDPOINT_TOKEN},
)
async def output_file(
    path: str,
    execution_id: str,
    output_name: str,
    *,
    request: Request,
    services: ServicesDep,
    tracker: TrackerDep,
    token: Token = None,
) -> Response:
    record = await _endpoint(services, path, request, token)
    execution = await _execution(tracker, record, execution_id)
    item = endpoint_output(execution, output_name)
    if item is None or item["data_type"] != "file":
        raise NotFoundError(
            f"execution {execution.id!r} has no file output {output_name!r}",
            name="OutputNotFound",
        )
    if not execution.is_finished:
        raise ConflictError(f"execution {execution.id!r} has not ended yet", name="NotFinished")
    key = item.get("key")
    if key is None or not await services.storage.exists(key):
        raise NotFoundError("this file was not produced", name="FileNotFound")
    return StreamingResponse(
        await services.storage.open(key), media_type="application/octet-stream"
    )
