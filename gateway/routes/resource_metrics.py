"""What tender's executions used (``get_resource_metrics``), from the stored samples."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.bodies import LimitedRoute
from gateway.deps import ServicesDep, current_user
from gateway.errors import NotProvidedError
from gateway.resource_metrics import parse_period, resource_csv, resource_json
from gateway.responses import JSON
from gateway.store.resources import ResourceSampleRepository

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(current_user)], route_class=LimitedRoute)


@router.get("/resource-metrics")
async def resource_metrics(request: Request, services: ServicesDep) -> Response:
    start, end, download = parse_period(request.query_params)
    if not services.settings.samples_resources:
        raise NotProvidedError(
            "resource metrics are not available: this gateway does not sample them "
            "(TENDER_RESOURCE_SAMPLE_S is 0, or the steps run on Argo, TENDER_ENGINE=argo)",
            name="ResourceMetricsNotAvailable",
        )
    samples = await services.in_store(ResourceSampleRepository(services.db).between, start, end)
    if download:
        return Response(resource_csv(samples), media_type="text/csv")
    return JSON(resource_json(samples))
