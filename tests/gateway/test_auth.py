from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from gateway.auth import Caller, issue_access_token, read_access_token
from gateway.errors import AuthenticationError
from gateway.sdk_tokens import fingerprint, hash_token, new_token

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_tokens_are_url_safe_and_distinct() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.replace("_", "").replace("-", "").isalnum() for t in tokens)


def test_hash_is_stable_and_not_the_token() -> None:
    token = new_token()
    assert hash_token(token) == hash_token(token)
    assert token not in hash_token(token)


def test_access_token_round_trip_and_sdk_claims() -> None:
    key = "k" * 48
    sdk_hash = hash_token(new_token())
    access = issue_access_token(
        "user-1", key, sdk_token_hash=sdk_hash, now=NOW, lifetime=timedelta(hours=1)
    )
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600  # the SDK reads both (craft-api.md 2.2)
    with pytest.raises(AuthenticationError, match="expired"):
        read_access_token(access, key)  # NOW is in the past
    fresh = issue_access_token(
        "user-1", key, sdk_token_hash=sdk_hash, now=datetime.now(UTC), lifetime=timedelta(hours=1)
    )
    assert read_access_token(fresh, key) == Caller("user-1", None, fingerprint(sdk_hash))
    assert fingerprint(sdk_hash) not in sdk_hash[16:]  # a prefix, not the whole hash
    step = issue_access_token(
        "user-1", key, now=datetime.now(UTC), lifetime=timedelta(hours=1), execution_id="run-x"
    )
    assert read_access_token(step, key) == Caller("user-1", "run-x")
    assert read_access_token(step, key).is_step


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode(
            {"sub": "x", "iat": 0, "exp": 2**33, "iss": "tender"}, key=None, algorithm="none"
        ),
        jwt.encode({"sub": "x", "iat": 0, "exp": 2**33, "iss": "tender"}, "another-key" * 4),
        jwt.encode({"sub": "x", "iat": 0, "exp": 2**33, "iss": "elsewhere"}, "k" * 48),
        jwt.encode({"sub": "x", "iat": 0, "exp": 2**33, "iss": "tender"}, "k" * 48),
    ],
    ids=["garbage", "alg-none", "wrong-key", "wrong-issuer", "no-sdk-token-named"],
)
def test_invalid_access_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationError):
        read_access_token(token, "k" * 48)
