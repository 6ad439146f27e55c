"""``create_app``: the gateway's FastAPI application on the settings it is given."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from gateway.errors import install_error_handlers
from gateway.responses import JSON
from gateway.routes import auth, executions, pipelines
from gateway.services import open_services
from gateway.settings import Settings
from gateway.tracking import ExecutionTracker

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            tracker = ExecutionTracker(services)
            app.state.services = services
            app.state.tracker = tracker
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
    )
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(pipelines.router)
    app.include_router(executions.router)
    return app
