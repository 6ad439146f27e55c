"""Administration that needs no running gateway: SDK tokens, the database's schema.

Deleting or rotating an SDK token revokes the access tokens issued for it at once (each request
checks them against the store); a rotated token keeps its id, which is the user its pipelines
and executions name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from gateway.data_dir import prepare_data_dir
from gateway.sdk_tokens import hash_token, new_token
from gateway.settings import Settings
from gateway.store import Database, TokenInfo, TokenRepository

__all__ = [
    "TokenNotFoundError",
    "create_sdk_token",
    "delete_sdk_tokens",
    "list_sdk_tokens",
    "rotate_sdk_token",
    "upgrade_database",
]


class TokenNotFoundError(LookupError):
    """No SDK token, or more than one, has the name given; the message says which."""


@contextmanager
def _tokens(settings: Settings) -> Iterator[TokenRepository]:
    prepare_data_dir(settings)
    db = Database(settings.resolved_database_url)
    try:
        db.upgrade()
        yield TokenRepository(db)
    finally:
        db.dispose()


def create_sdk_token(settings: Settings, name: str) -> str:
    """A new SDK token, stored hashed in the gateway's database; the only copy is returned."""
    token = new_token()
    with _tokens(settings) as tokens:
        tokens.add(uuid.uuid4().hex, name, hash_token(token), datetime.now(UTC))
    return token


def list_sdk_tokens(settings: Settings) -> list[TokenInfo]:
    with _tokens(settings) as tokens:
        return tokens.list()


def delete_sdk_tokens(settings: Settings, name: str) -> int:
    """Delete the SDK tokens named ``name``; their access tokens stop working at once."""
    with _tokens(settings) as tokens:
        deleted = tokens.delete_named(name)
    if deleted == 0:
        raise TokenNotFoundError(f"no SDK token is named {name!r}")
    return deleted


def rotate_sdk_token(settings: Settings, name: str) -> str:
    """A new secret for the SDK token named ``name``; the old one and its access tokens stop
    working at once. The only copy of the new secret is returned."""
    token = new_token()
    with _tokens(settings) as tokens:
        found = tokens.rehash_named(name, hash_token(token))
    if found != 1:
        raise TokenNotFoundError(
            f"no SDK token is named {name!r}"
            if found == 0
            else f"{found} SDK tokens are named {name!r}: delete them and create one"
        )
    return token


def upgrade_database(settings: Settings) -> None:
    """Migrate the schema to this version's (a Kubernetes init container runs it before the
    gateway serves); several at once on PostgreSQL take turns."""
    with _tokens(settings):
        pass  # opening the store migrates it
