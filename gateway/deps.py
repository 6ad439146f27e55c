"""What routes ask for, as ``Annotated`` dependencies: a route's signature lists its needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import read_access_token
from gateway.errors import AuthenticationError
from gateway.services import Services
from gateway.tracking import ExecutionTracker

__all__ = ["CurrentUser", "ServicesDep", "TrackerDep", "close_form", "current_user"]


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _tracker(request: Request) -> ExecutionTracker:
    tracker: ExecutionTracker = request.app.state.tracker
    return tracker


async def current_user(request: Request, services: Annotated[Services, Depends(_services)]) -> str:
    """The id of the SDK token behind the request's access token (``Authorization: Bearer``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(
            "this route needs an access token: Authorization: Bearer <token from "
            "/api/v1/auth/refresh>",
            name="MissingToken",
        )
    return read_access_token(token.strip(), services.signing_key)


async def close_form(request: Request) -> AsyncIterator[None]:
    """Close what a route's form parsing opened (uploaded files spool to temporary files)."""
    yield
    await request.close()


ServicesDep = Annotated[Services, Depends(_services)]
TrackerDep = Annotated[ExecutionTracker, Depends(_tracker)]
CurrentUser = Annotated[str, Depends(current_user)]
