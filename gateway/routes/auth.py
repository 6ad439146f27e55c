"""The control API: trading an SDK token (or a running step's token) for an access token, and
who a token is (``who_am_i``, ``get_user``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.auth import issue_access_token
from gateway.bodies import LimitedRoute
from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import AuthenticationError, NotFoundError
from gateway.sdk_tokens import hash_token
from gateway.services import Services
from gateway.step_scope import running_execution
from gateway.step_tokens import is_step_token, read_step_token

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", route_class=LimitedRoute)


class RefreshRequest(BaseModel):
    refresh_token: str


@router.post("/auth/refresh")
async def refresh(body: RefreshRequest, services: ServicesDep) -> dict[str, Any]:
    lifetime = timedelta(seconds=services.settings.token_lifetime_s)
    now = datetime.now(UTC)
    if is_step_token(body.refresh_token):
        execution_id = read_step_token(services.signing_key, body.refresh_token)
        if execution_id is None:
            raise AuthenticationError("this step token is not valid", name="InvalidSdkToken")
        record = await running_execution(services, execution_id, wait_for_record=True)
        access_token = issue_access_token(
            record.created_by,
            services.signing_key,
            now=now,
            lifetime=lifetime,
            execution_id=execution_id,
        )
        return {"access_token": access_token}
    token_hash = hash_token(body.refresh_token)
    token_id = await services.in_store(services.tokens.find, token_hash)
    if token_id is None:
        raise AuthenticationError("this SDK token is not known", name="InvalidSdkToken")
    access_token = issue_access_token(
        token_id, services.signing_key, now=now, lifetime=lifetime, sdk_token_hash=token_hash
    )
    return {"access_token": access_token}


@router.get("/users/me")
async def who_am_i(user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    return await _user(services, user)


@router.get("/users/{user_id}")
async def get_user(user_id: str, services: ServicesDep, _: CurrentUser) -> dict[str, Any]:
    return await _user(services, user_id)


async def _user(services: Services, user_id: str) -> dict[str, Any]:
    """A user is an SDK token: its id, and the name it was created with; tender keeps no
    e-mail addresses."""
    name = await services.in_store(services.tokens.name_of, user_id)
    if name is None:
        raise NotFoundError(f"user {user_id!r} not found", name="UserNotFound")
    return {"id": user_id, "name": name, "email": None}
