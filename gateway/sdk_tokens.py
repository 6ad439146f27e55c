"""SDK tokens: long-lived random secrets, of which the store keeps only a hash.

Stdlib only, so that ``tender token create`` starts without loading the server.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["fingerprint", "hash_token", "new_token"]

_TOKEN_PREFIX = "tdr_"  # noqa: S105 - a prefix that makes leaked tokens greppable
_FINGERPRINT_DIGITS = 16


def new_token() -> str:
    """A URL-safe secret, so that it also works in a query string without encoding."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256: the token has 256 bits of entropy, so a slow hash would add nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(token_hash: str) -> str:
    """What an access token keeps of its SDK token's hash: enough to tell a rotated one."""
    return token_hash[:_FINGERPRINT_DIGITS]
