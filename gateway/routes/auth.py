"""The control API: trading an SDK token for an access token, and who that token is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.auth import hash_token, issue_access_token
from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import AuthenticationError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


class RefreshRequest(BaseModel):
    refresh_token: str


@router.post("/auth/refresh")
async def refresh(body: RefreshRequest, services: ServicesDep) -> dict[str, Any]:
    token_id = await services.in_store(services.tokens.find, hash_token(body.refresh_token))
    if token_id is None:
        raise AuthenticationError("this SDK token is not known", name="InvalidSdkToken")
    lifetime = timedelta(seconds=services.settings.token_lifetime_s)
    access_token = issue_access_token(
        token_id, services.signing_key, now=datetime.now(UTC), lifetime=lifetime
    )
    return {"access_token": access_token}


@router.get("/users/me")
async def who_am_i(user: CurrentUser) -> dict[str, Any]:
    return {"id": user, "name": user, "email": None}
