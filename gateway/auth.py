"""SDK tokens and the access tokens (JWTs) they are exchanged for.

An SDK token is a long-lived random secret; only its SHA-256 is stored (it has 256 bits of
entropy, so a slow hash adds nothing). ``POST /api/v1/auth/refresh`` trades it for an HS256 JWT
that every other ``/api/v1`` route requires. The SDK decodes the JWT without checking its
signature, and needs ``iat`` and ``exp`` in it (craft-api.md section 2.2).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from gateway.errors import AuthenticationError

__all__ = [
    "Caller",
    "hash_token",
    "issue_access_token",
    "new_signing_key",
    "new_token",
    "read_access_token",
]

_ALGORITHM = "HS256"
_ISSUER = "tender"
_TOKEN_PREFIX = "tdr_"  # noqa: S105 - a prefix that makes leaked tokens greppable
# The private claim of an access token traded for a step token: the execution it acts for.
_EXECUTION_CLAIM = "tender.io/execution"


@dataclass(frozen=True)
class Caller:
    """Who sends a request: an SDK token's id, and the execution if it is a running step's."""

    user: str
    execution_id: str | None = None

    @property
    def is_step(self) -> bool:
        return self.execution_id is not None


def new_token() -> str:
    """A URL-safe secret, so that it also works in a query string without encoding."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_signing_key() -> str:
    return secrets.token_urlsafe(48)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_access_token(
    subject: str,
    key: str,
    *,
    now: datetime,
    lifetime: timedelta,
    execution_id: str | None = None,
) -> str:
    """``execution_id`` makes it a step's access token (traded for a step token)."""
    claims: dict[str, object] = {"sub": subject, "iss": _ISSUER, "iat": now, "exp": now + lifetime}
    if execution_id is not None:
        claims[_EXECUTION_CLAIM] = execution_id
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def read_access_token(token: str, key: str) -> Caller:
    """The caller of a valid access token; anything else is an AuthenticationError."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["sub", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError(
            "the access token has expired: refresh it", name="TokenExpired"
        ) from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("the access token is not valid", name="InvalidToken") from None
    execution_id = claims.get(_EXECUTION_CLAIM)
    return Caller(str(claims["sub"]), None if execution_id is None else str(execution_id))
