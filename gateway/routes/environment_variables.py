"""Environment variables (craft-api.md section 5.6): set several, list them all, delete one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from gateway.bodies import LimitedRoute
from gateway.deps import ServicesDep, current_user
from gateway.environment_variables import delete_variable, list_variables, put_variables
from gateway.openapi import request_body

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/environment-variables",
    dependencies=[Depends(current_user)],
    route_class=LimitedRoute,
)


@router.put(
    "",
    openapi_extra=request_body(
        json={
            "type": "object",
            "properties": {
                "environment_variables": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 65536},
                    "description": "values by name; names are identifiers",
                }
            },
            "required": ["environment_variables"],
        }
    ),
)
async def put(services: ServicesDep, body: Annotated[Any, Body()]) -> list[dict[str, str]]:
    """The names set; not their values, which the caller has."""
    return [{"name": name} for name in await put_variables(services, body)]


@router.get("")
async def list_all(services: ServicesDep) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in (await list_variables(services)).items()]


@router.delete("/{name}")
async def delete(name: str, services: ServicesDep) -> dict[str, str]:
    return {"name": name, "value": await delete_variable(services, name)}
