"""``tender serve``: the app on uvicorn, and a shutdown that starts with the engine.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits for the open ones before the
app's lifespan ends. Requests held by a long-poll would keep it waiting for their whole hold, and
the engine's steps would run on meanwhile: so the engine is closed as soon as the signal arrives.
Its running steps are killed, their executions end in ``Error`` with a message that says the
engine was shut down, and the held requests answer with that.
"""

from __future__ import annotations

import asyncio
import gc
from types import FrameType

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings

__all__ = ["serve"]

# How long open requests may still take once the engine is closed.
_GRACEFUL_SHUTDOWN_S = 10
_GC_YOUNG_THRESHOLD = 10_000  # Python's default is 700 allocations


def serve(settings: Settings) -> None:
    app = create_app(settings)
    # What is loaded now lives as long as the process: out of the cyclic collector's way. Requests
    # make many short-lived containers, rarely cycles: collect the young generation less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    _Server(config, app).run()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        begin = getattr(self._app.state, "begin_shutdown", None)
        if begin is not None and self._loop is not None:
            # A signal handler runs between two bytecodes of the loop's own thread: schedule.
            self._loop.call_soon_threadsafe(begin)
