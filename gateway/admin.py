"""Administration that needs no running gateway: issuing SDK tokens from the command line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from gateway.auth import hash_token, new_token
from gateway.settings import Settings
from gateway.store import Database, TokenRepository

__all__ = ["create_sdk_token"]


def create_sdk_token(settings: Settings, name: str) -> str:
    """A new SDK token, stored hashed in the gateway's database; the only copy is returned."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        db.upgrade()
        token = new_token()
        TokenRepository(db).add(uuid.uuid4().hex, name, hash_token(token), datetime.now(UTC))
    finally:
        db.dispose()
    return token
