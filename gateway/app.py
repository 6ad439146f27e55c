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
from gateway.openapi import ERROR_RESPONSES, SIGNED_URL_RESPONSES, install_openapi
from gateway.responses import JSON
from gateway.routes import (
    auth,
    datastore,
    deployments,
    endpoints,
    environment,
    environment_variables,
    executions,
    health,
    metrics,
    pipeline_templates,
    pipelines,
    resource_metrics,
)
from gateway.services import open_services
from gateway.settings import Settings
from gateway.tracking import ExecutionTracker

__all__ = ["create_app"]

_DESCRIPTION = """The Craft AI platform's API, served on Argo Workflows (or the embedded engine).

Trade an SDK token (`tender token create`) for an access token with `POST /api/v1/auth/refresh`,
then send `Authorization: Bearer <access token>`. Endpoints take their own endpoint token, and
the data store's signed URLs carry their signature; every other route answers 401 without an
access token. Every error is `{"message", "name", "request_id", "additional_data"}`.
"""


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """``clock`` drives the embedded engine's schedules (default: the system's)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, clock=clock) as services:
            tracker = ExecutionTracker(services)
            services.follower = tracker
            app.state.services = services
            app.state.tracker = tracker
            app.state.endpoint_gates = EndpointGates()
            services.spawn(restore_low_latency(services))
            tracker.start()
            closing: list[asyncio.Task[None]] = []
            loop = asyncio.get_running_loop()
            # Called by the server when a stop signal arrives (gateway/serving.py).
            app.state.begin_shutdown = lambda: closing.append(
                loop.create_task(services.close_engine())
            )
            try:
                yield
            finally:
                # Steps still running are killed and their executions end in Error: the
                # tracker must see those last changes before it stops.
                await asyncio.gather(*closing, return_exceptions=True)
                await services.close_engine()
                await tracker.stop()

    app = FastAPI(
        title="tender",
        description=_DESCRIPTION,
        lifespan=lifespan,
        # An accidental 307 on /outputs?wait_for_completion=true loops the SDK forever.
        redirect_slashes=False,
        default_response_class=JSON,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        dependencies=[Depends(close_form)],
    )
    app.state.settings = settings  # what the routes' body limits read (gateway.bodies)
    install_error_handlers(app)
    for router in (
        health.router,
        auth.router,
        pipelines.router,
        pipelines.uploads,
        executions.router,
        deployments.router,
        deployments.uploads,
        endpoints.router,
        environment_variables.router,
        datastore.router,
        metrics.router,
        resource_metrics.router,
        pipeline_templates.router,
        environment.public_router,
        environment.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(datastore.signed_router, responses=SIGNED_URL_RESPONSES)
    install_openapi(app)
    return app
