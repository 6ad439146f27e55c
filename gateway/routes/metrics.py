"""Metrics of executions: recorded from inside steps, read back with filters and pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateway.bodies import LimitedRoute
from gateway.deps import CallerDep, ServicesDep
from gateway.errors import BadRequestError
from gateway.metrics import append_list_values, list_metrics, put_single_value
from gateway.openapi import request_body

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/metrics", route_class=LimitedRoute)


def _metric_body(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return request_body(
        json={
            "type": "object",
            "properties": {key: value, "execution_id": {"type": "string", "minLength": 1}},
            "required": [key, "execution_id"],
        }
    )


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequestError("the body must be a JSON object", name="InvalidJSON") from None


@router.put("/single-value/{name}", openapi_extra=_metric_body("value", {"type": "number"}))
async def put_value(
    name: str, request: Request, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    await put_single_value(services, caller, name, await _json_body(request))
    return {"name": name}


@router.post(
    "/list-values/{name}",
    openapi_extra=_metric_body("values", {"type": "array", "items": {"type": "number"}}),
)
async def append_values(
    name: str, request: Request, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    count = await append_list_values(services, caller, name, await _json_body(request))
    return {"name": name, "count": count}


@router.get("/single-value")
async def values(request: Request, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return await list_metrics(services, caller, request.query_params, lists=False)


@router.get("/list-values")
async def lists(request: Request, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return await list_metrics(services, caller, request.query_params, lists=True)
