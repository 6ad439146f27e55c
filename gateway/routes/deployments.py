"""Deployments with the SDK token: create (the URL gives the rule), read, list, change, delete,
trigger, rotate an endpoint's token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from gateway.bodies import LimitedRoute, UploadRoute
from gateway.deployments import (
    EndpointGates,
    create_deployment,
    delete_deployment,
    deployment_view,
    deployments_of,
    get_deployment,
    parse_deployment,
    pipeline_of,
    read_endpoint_call,
    rotate_endpoint_token,
    schedule_error,
    trigger_endpoint,
    update_deployment,
)
from gateway.deps import CurrentUser, ServicesDep, current_user
from gateway.errors import BadRequestError
from gateway.logs import LogQuery
from gateway.lowlatency.deployments import pods
from gateway.lowlatency.logs import deployment_logs
from gateway.openapi import ENDPOINT_INPUTS, ref, request_body
from gateway.services import Services
from gateway.store.records import DeploymentRecord

__all__ = ["router", "uploads"]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(current_user)], route_class=LimitedRoute)
# Triggering an endpoint takes its file inputs.
uploads = APIRouter(prefix="/api/v1", dependencies=[Depends(current_user)], route_class=UploadRoute)

Wait = Annotated[bool, Query(alias="wait_for_completion")]


async def _gates(request: Request) -> EndpointGates:
    gates: EndpointGates = request.app.state.endpoint_gates
    return gates


GatesDep = Annotated[EndpointGates, Depends(_gates)]


async def _view(services: Services, record: DeploymentRecord) -> dict[str, Any]:
    pipeline = await pipeline_of(services, record)
    return deployment_view(
        record,
        pipeline,
        pods(services, record.name),
        schedule_error=await schedule_error(services, record),
    )


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequestError("the body must be a JSON object", name="InvalidJSON") from None


_CREATION = request_body(json=ref("DeploymentCreate"))
_UPDATE = request_body(
    json={
        "type": "object",
        "properties": {
            "is_enabled": {"type": "boolean"},
            "schedule": {"type": "string", "description": "5-field cron, in UTC"},
            "inputs_mapping": {"type": "array", "items": ref("InputSource")},
            "outputs_mapping": {"type": "array", "items": ref("OutputDestination")},
        },
        "additionalProperties": False,
    }
)
_NEW_TOKEN = {
    "type": "object",
    "properties": {"endpoint_token": {"type": "string", "description": "the token to use"}},
}


@router.post("/endpoints", openapi_extra=_CREATION)
async def create_endpoint(
    request: Request, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    deployment = parse_deployment(await _json_body(request), "endpoint")
    return await _view(services, await create_deployment(services, deployment, user))


@router.post("/periodic-deployment", openapi_extra=_CREATION)
async def create_periodic(
    request: Request, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    deployment = parse_deployment(await _json_body(request), "periodic")
    return await _view(services, await create_deployment(services, deployment, user))


@router.get("/deployments")
async def list_deployments(services: ServicesDep) -> list[dict[str, Any]]:
    records = await services.in_store(deployments_of(services).list_all)
    return [
        {
            "name": r.name,
            "pipeline_name": r.pipeline_name,
            "execution_rule": r.execution_rule,
            "mode": r.definition.get("mode", "elastic"),
            "is_enabled": r.is_enabled,
            "status": r.status,
            "created_at": deployment_view(r, None)["created_at"],
        }
        for r in records
    ]


@router.get("/deployments/{name}")
async def read(name: str, services: ServicesDep, wait: Wait = False) -> dict[str, Any]:
    return await _view(services, await get_deployment(services, name, wait=wait))


@router.patch("/deployments/{name}", openapi_extra=_UPDATE)
async def update(
    name: str, request: Request, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    record = await update_deployment(services, name, await _json_body(request), user)
    return await _view(services, record)


@router.delete("/deployments/{name}")
async def delete(name: str, services: ServicesDep) -> dict[str, Any]:
    record = await delete_deployment(services, name)
    return {"name": record.name, "execution_rule": record.execution_rule}


@router.post("/deployments/{name}/logs")
async def logs(
    name: str, services: ServicesDep, query: Annotated[LogQuery | None, Body()] = None
) -> list[dict[str, Any]]:
    """A low-latency deployment's workers' lines; an elastic deployment has no workers."""
    record = await get_deployment(services, name)
    return await deployment_logs(services, record.name, query or LogQuery())


@router.get("/deployments/{name}/executions/latest")
async def latest_execution(name: str, services: ServicesDep) -> dict[str, Any] | None:
    await get_deployment(services, name)
    execution_id = await services.in_store(deployments_of(services).latest_execution_id, name)
    return None if execution_id is None else {"execution_id": execution_id}


@uploads.post("/deployments/{name}/executions", openapi_extra=ENDPOINT_INPUTS)
async def trigger(
    name: str, request: Request, services: ServicesDep, gates: GatesDep
) -> dict[str, Any]:
    """``trigger_endpoint`` without an endpoint token; the SDK then long-polls the outputs."""
    record = await get_deployment(services, name)
    execution = await trigger_endpoint(services, gates, record, await read_endpoint_call(request))
    return {"execution_id": execution.id}


@router.post(
    "/endpoints/{name}/generate-new-token",
    openapi_extra=request_body(required=False, form=_NEW_TOKEN, multipart=_NEW_TOKEN),
)
async def generate_new_token(name: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """The SDK sends ``endpoint_token`` as a form field, or no body at all (craft-api.md 5.5)."""
    given = None
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("endpoint_token")
        if value is not None and not isinstance(value, str):
            raise BadRequestError("endpoint_token must be a text field", name="InvalidBody")
        given = value or None
    return {"endpoint_token": await rotate_endpoint_token(services, name, given)}
