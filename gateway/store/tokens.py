"""SDK tokens (hashed) and the access-token signing key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.records import TokenInfo
from gateway.store.tables import ApiTokenRow, SigningKeyRow

__all__ = ["TokenRepository"]


class TokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, token_id: str, name: str, token_hash: str, created_at: datetime) -> None:
        with self._db.transaction() as session:
            session.add(
                ApiTokenRow(id=token_id, name=name, token_hash=token_hash, created_at=created_at)
            )

    def find(self, token_hash: str) -> str | None:
        """The id of the token with this hash, if there is one."""
        with self._db.transaction() as session:
            found: str | None = session.scalar(
                select(ApiTokenRow.id).where(ApiTokenRow.token_hash == token_hash)
            )
            return found

    def name_of(self, token_id: str) -> str | None:
        """The name given to the token with this id (``tender token create --name``)."""
        with self._db.transaction() as session:
            found: str | None = session.scalar(
                select(ApiTokenRow.name).where(ApiTokenRow.id == token_id)
            )
            return found

    def hash_of(self, token_id: str) -> str | None:
        """The hash of the SDK token with this id, if it still exists."""
        with self._db.transaction() as session:
            found: str | None = session.scalar(
                select(ApiTokenRow.token_hash).where(ApiTokenRow.id == token_id)
            )
            return found

    def list(self) -> list[TokenInfo]:
        with self._db.transaction() as session:
            rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at))
            return [TokenInfo(row.id, row.name, row.created_at) for row in rows]

    def delete_named(self, name: str) -> int:
        """Delete every SDK token with this name; how many there were."""
        with self._db.transaction() as session:
            result = session.execute(delete(ApiTokenRow).where(ApiTokenRow.name == name))
            return int(getattr(result, "rowcount", 0))

    def rehash_named(self, name: str, token_hash: str) -> int:
        """Give the one SDK token with this name a new secret (its id, the user, stays);
        returns how many tokens have that name, and changes nothing unless exactly one."""
        with self._db.transaction() as session:
            rows = list(session.scalars(select(ApiTokenRow).where(ApiTokenRow.name == name)))
            if len(rows) == 1:
                rows[0].token_hash = token_hash
            return len(rows)

    def signing_key(self, new_key: Callable[[], str], now: datetime) -> str:
        """The signing key, made with ``new_key`` the first time; when gateways starting at once
        race to make it, the first one stored wins and the others read it."""
        try:
            with self._db.transaction() as session:
                secret = session.scalar(select(SigningKeyRow.secret).order_by(SigningKeyRow.id))
                if secret is None:
                    session.add(SigningKeyRow(id=1, secret=new_key(), created_at=now))
        except IntegrityError:
            secret = None  # another gateway stored its key first
        if secret is not None:
            return secret
        with self._db.transaction() as session:
            stored: str = session.execute(
                select(SigningKeyRow.secret).order_by(SigningKeyRow.id)
            ).scalar_one()
            return stored
