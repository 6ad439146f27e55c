"""The access tokens (JWTs) that SDK tokens (``gateway.sdk_tokens``) and step tokens are
exchanged for.

``POST /api/v1/auth/refresh`` trades an SDK token for an HS256 JWT that every other ``/api/v1``
route requires. The SDK decodes the JWT without checking its signature, and needs ``iat`` and
``exp`` in it (craft-api.md section 2.2).

An SDK token's access token names it: ``sub`` is its id (the user), ``sdk`` the first 16 hex
digits of its hash. Each request checks that the store still holds that hash for that id
(``deps.current_caller``), so that deleting or rotating an SDK token revokes its access tokens
at once. A step's access token names its execution instead, and lives while it runs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from gateway.errors import AuthenticationError
from gateway.sdk_tokens import fingerprint

__all__ = [
    "Caller",
    "issue_access_token",
    "new_signing_key",
    "read_access_token",
]

_ALGORITHM = "HS256"
_ISSUER = "tender"
# The private claim of an access token traded for a step token: the execution it acts for.
_EXECUTION_CLAIM = "tender.io/execution"
# The claim that ties an SDK token's access token to that token's current secret.
_SDK_CLAIM = "sdk"


@dataclass(frozen=True)
class Caller:
    """Who sends a request: an SDK token's id, and the execution if it is a running step's."""

    user: str
    execution_id: str | None = None
    sdk_fingerprint: str | None = None  # of the SDK token it was issued for (not a step's)

    @property
    def is_step(self) -> bool:
        return self.execution_id is not None


def new_signing_key() -> str:
    return secrets.token_urlsafe(48)


def issue_access_token(
    subject: str,
    key: str,
    *,
    now: datetime,
    lifetime: timedelta,
    sdk_token_hash: str | None = None,
    execution_id: str | None = None,
) -> str:
    """An SDK token's access token (``sdk_token_hash``), or a step's (``execution_id``, traded
    for a step token)."""
    claims: dict[str, object] = {"sub": subject, "iss": _ISSUER, "iat": now, "exp": now + lifetime}
    if sdk_token_hash is not None:
        claims[_SDK_CLAIM] = fingerprint(sdk_token_hash)
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
    sdk = claims.get(_SDK_CLAIM)
    if (execution_id is None) == (sdk is None):
        raise AuthenticationError("the access token is not valid", name="InvalidToken")
    return Caller(
        str(claims["sub"]),
        None if execution_id is None else str(execution_id),
        None if sdk is None else str(sdk),
    )
