"""What routes ask for, as ``Annotated`` dependencies: a route's signature lists its needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import Caller, read_access_token
from gateway.errors import AuthenticationError
from gateway.services import Services
from gateway.step_scope import check_step_route, running_execution
from gateway.tracking import ExecutionTracker

__all__ = [
    "CallerDep",
    "CurrentUser",
    "ServicesDep",
    "TrackerDep",
    "close_form",
    "current_caller",
    "current_user",
]


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _tracker(request: Request) -> ExecutionTracker:
    tracker: ExecutionTracker = request.app.state.tracker
    return tracker


async def current_caller(
    request: Request, services: Annotated[Services, Depends(_services)]
) -> Caller:
    """Who sends the request's access token (``Authorization: Bearer``). A running step's
    token works on the routes of its scope (403 elsewhere) while its execution runs (401
    after)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(
            "this route needs an access token: Authorization: Bearer <token from "
            "/api/v1/auth/refresh>",
            name="MissingToken",
        )
    caller = read_access_token(token.strip(), services.signing_key)
    if caller.execution_id is not None:
        await running_execution(services, caller.execution_id)
        route = request.scope.get("route")
        check_step_route(caller, request.method, getattr(route, "path", request.url.path))
    return caller


async def current_user(caller: Annotated[Caller, Depends(current_caller)]) -> str:
    """The id of the SDK token the request acts for (a step acts for its execution's creator)."""
    return caller.user


async def close_form(request: Request) -> AsyncIterator[None]:
    """Close what a route's form parsing opened (uploaded files spool to temporary files)."""
    yield
    await request.close()


ServicesDep = Annotated[Services, Depends(_services)]
TrackerDep = Annotated[ExecutionTracker, Depends(_tracker)]
CurrentUser = Annotated[str, Depends(current_user)]
CallerDep = Annotated[Caller, Depends(current_caller)]
