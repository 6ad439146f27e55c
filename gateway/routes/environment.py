"""What the SDK asks about the environment itself: its id, and its vector database, which
tender does not have."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from gateway.bodies import LimitedRoute
from gateway.deps import current_user
from gateway.errors import NotProvidedError

__all__ = ["ENVIRONMENT_ID", "public_router", "router"]

# One gateway serves one environment; the SDK only passes the id back to the vector-database
# route below.
ENVIRONMENT_ID = "tender"

public_router = APIRouter(prefix="/api/v1", route_class=LimitedRoute)
router = APIRouter(prefix="/api/v1", dependencies=[Depends(current_user)], route_class=LimitedRoute)


@public_router.get("/environment-info")
async def environment_info() -> dict[str, Any]:
    """Called without a token by the SDK (craft-api.md section 5.9)."""
    return {"environment_id": ENVIRONMENT_ID}


@router.get("/environments/{environment_id}/vector-database")
async def vector_database(environment_id: str) -> dict[str, Any]:
    raise NotProvidedError(
        "tender has no vector database: get_vector_database_credentials, get_weaviate_client "
        "and get_async_weaviate_client are not available; run Weaviate yourself and connect "
        "to it with the weaviate client",
        name="VectorDatabaseNotProvided",
        additional_data={"environment_id": environment_id},
    )
