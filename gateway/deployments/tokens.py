"""Endpoint tokens: URL-safe secrets, compared by their SHA-256 in constant time.

The SDK appends a token to file URLs without URL-encoding it (craft-api.md section 2.5), so a
token a user chooses must be URL-safe too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from gateway.errors import AuthenticationError, BadRequestError, ForbiddenError
from gateway.store.records import DeploymentRecord

__all__ = ["check_endpoint_token", "hash_endpoint_token", "new_endpoint_token", "read_user_token"]

# RFC 3986 unreserved characters. At least 8 of them: a shorter secret is guessed too easily.
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{8,256}$")


def new_endpoint_token() -> str:
    return secrets.token_urlsafe(32)


def read_user_token(token: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise BadRequestError(
            "an endpoint token must be 8 to 256 URL-safe characters (letters, digits, "
            "'-', '_', '.', '~')",
            name="InvalidEndpointToken",
        )
    return token


def hash_endpoint_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_endpoint_token(deployment: DeploymentRecord, token: str | None) -> None:
    """Raise 401 without a token, 403 with one that is not this endpoint's current token."""
    if not token:
        raise AuthenticationError(
            "this endpoint needs its token: Authorization: EndpointToken <token> (or ?token=)",
            name="MissingEndpointToken",
        )
    expected = deployment.endpoint_token_hash or ""
    # Digests of equal length: the comparison's time says nothing about the token.
    if not hmac.compare_digest(hash_endpoint_token(token), expected):
        raise ForbiddenError("this endpoint token is not valid", name="InvalidEndpointToken")
