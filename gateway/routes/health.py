"""``GET /healthz``: a public route for probes; it says nothing.

It answers once the app's lifespan has opened the store, storage and engine (uvicorn serves
nothing before), so that a probe (Kubernetes, a load balancer) knows the gateway is up. It says
nothing else: no version, no settings, nothing about the cluster.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.bodies import LimitedRoute

__all__ = ["router"]

router = APIRouter(route_class=LimitedRoute)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
