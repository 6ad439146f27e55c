"""Metrics of executions: recorded from inside steps, read back with filters and pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateway.deps import CallerDep, ServicesDep
from gateway.errors import BadRequestError
from gateway.metrics import append_list_values, list_metrics, put_single_value

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/metrics")


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequestError("the body must be a JSON object", name="InvalidJSON") from None


@router.put("/single-value/{name}")
async def put_value(
    name: str, request: Request, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    await put_single_value(services, caller, name, await _json_body(request))
    return {"name": name}


@router.post("/list-values/{name}")
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
