"""Pipeline templates: the catalogue of ready pipelines (``gateway.pipeline_templates``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from gateway.bodies import LimitedRoute
from gateway.deps import ServicesDep, current_user
from gateway.errors import NotFoundError
from gateway.pipeline_templates import template_details, template_reference, templates_of

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/pipeline-templates",
    dependencies=[Depends(current_user)],
    route_class=LimitedRoute,
)


@router.get("")
async def list_templates(services: ServicesDep) -> dict[str, Any]:
    templates = await templates_of(services)
    return {"pipeline_templates": [template_reference(t) for t in templates.values()]}


@router.get("/{name}")
async def read(name: str, services: ServicesDep) -> dict[str, Any]:
    template = (await templates_of(services)).get(name)
    if template is None:
        raise NotFoundError(
            f"pipeline template {name!r} not found", name="PipelineTemplateNotFound"
        )
    return template_details(template)
