"""``create_app``: the gateway's FastAPI application on the settings it is given."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from gateway.deployments import EndpointGates, restore_low_latency
from gateway.deps import close_form
from gateway.engines.local import Clock
from gateway.errors import install_error_handlers
from gateway.responses import JSON
from gateway.routes import (
    auth,
    datastore,
    deployments,
    endpoints,
    environment,
    environment_variables,
    executions,
    metrics,
    pipeline_templates,
    pipelines,
    resource_metrics,
)
from gateway.services import open_services
from gateway.settings import Settings
from gateway.tracking import ExecutionTracker

__all__ = ["create_app"]


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """``clock`` drives the embedded engine's schedules (default: the system's)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, clock=clock) as services:
            tracker = ExecutionTracker(services)
            app.state.services = services
            app.state.tracker = tracker
            app.state.endpoint_gates = EndpointGates()
            services.spawn(restore_low_latency(services))
            watcher = asyncio.get_running_loop().create_task(tracker.watch())
            try:
                yield
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    app = FastAPI(
        title="tender",
        lifespan=lifespan,
        # An accidental 307 on /outputs?wait_for_completion=true loops the SDK forever.
        redirect_slashes=False,
        default_response_class=JSON,
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
        dependencies=[Depends(close_form)],
    )
    app.state.settings = settings  # what the routes' body limits read (gateway.bodies)
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(pipelines.router)
    app.include_router(pipelines.uploads)
    app.include_router(executions.router)
    app.include_router(deployments.router)
    app.include_router(deployments.uploads)
    app.include_router(endpoints.router)
    app.include_router(environment_variables.router)
    app.include_router(datastore.router)
    app.include_router(datastore.signed_router)
    app.include_router(metrics.router)
    app.include_router(resource_metrics.router)
    app.include_router(pipeline_templates.router)
    app.include_router(environment.public_router)
    app.include_router(environment.router)
    return app
