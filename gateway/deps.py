"""What routes ask for, as ``Annotated`` dependencies: a route's signature lists its needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.auth import Caller, read_access_token
from gateway.errors import AuthenticationError
from gateway.sdk_tokens import fingerprint
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


# Declared with FastAPI's scheme so that the OpenAPI document says how routes authenticate;
# its errors are tender's own (auto_error off).
_BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="An access token from POST /api/v1/auth/refresh",
)


async def current_caller(
    request: Request,
    services: Annotated[Services, Depends(_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Caller:
    """Who sends the request's access token (``Authorization: Bearer``): an SDK token that has
    been neither deleted nor rotated since (401 ``TokenRevoked``), or a running step, whose
    token works on the routes of its scope (403 elsewhere) while its execution runs (401
    after)."""
    if credentials is None:
        raise AuthenticationError(
            "this route needs an access token: Authorization: Bearer <token from "
            "/api/v1/auth/refresh>",
            name="MissingToken",
        )
    caller = read_access_token(credentials.credentials.strip(), services.signing_key)
    if caller.sdk_fingerprint is not None:
        stored = await services.in_store(services.tokens.hash_of, caller.user)
        if stored is None or fingerprint(stored) != caller.sdk_fingerprint:
            raise AuthenticationError(
                "the SDK token this access token was issued for was deleted or rotated",
                name="TokenRevoked",
            )
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
