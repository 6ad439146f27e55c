"""Step tokens: the SDK token a running execution gets, which the gateway never stores.

A step token is ``tdx_<execution id>.<MAC>``, the MAC an HMAC-SHA256 of the execution id under a
key derived from the access-token signing key. The gateway verifies it by computing the MAC
again, so the token is written nowhere: not in a manifest, not in the store, not in a log. Any
engine can hand it to a step at any time (again after a restart) from the execution id alone.

It is revoked when the execution ends: ``POST /auth/refresh`` trades it for an access token only
while the execution's record is unfinished, and every request made with such an access token
checks that again (``gateway.callers``). What such a caller may do is ``gateway.step_scope``.

The step receives it through the per-execution Secret (``compiler.execution_secret``), with
the gateway's URL as the step reaches it: ``execution_secret_data`` is that Secret's content,
for the embedded engine's ``secretKeyRef`` resolution and for the Argo engine's Secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from compiler.execution_secret import SDK_ENVIRONMENT, execution_id_of_secret
from gateway.engines.local.settings import SecretLookup

__all__ = [
    "execution_secret_data",
    "execution_secret_lookup",
    "is_step_token",
    "read_step_token",
    "step_token",
]

_PREFIX = "tdx_"  # greppable, like the SDK tokens' "tdr_"
_PURPOSE = b"tender step token v1"


def _step_key(signing_key: str) -> bytes:
    """A key of its own, so that a step token's MAC can never pass for anything else's."""
    return hmac.new(signing_key.encode(), _PURPOSE, hashlib.sha256).digest()


def _mac(signing_key: str, execution_id: str) -> str:
    digest = hmac.new(_step_key(signing_key), execution_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def step_token(signing_key: str, execution_id: str) -> str:
    return f"{_PREFIX}{execution_id}.{_mac(signing_key, execution_id)}"


def is_step_token(token: str) -> bool:
    return token.startswith(_PREFIX)


def read_step_token(signing_key: str, token: str) -> str | None:
    """The execution id a genuine step token was made for; None for anything else."""
    if not is_step_token(token):
        return None
    execution_id, dot, mac = token.removeprefix(_PREFIX).rpartition(".")
    if not dot or not execution_id:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(signing_key, execution_id).encode()):
        return None
    return execution_id


def execution_secret_data(signing_key: str, execution_id: str, gateway_url: str) -> dict[str, str]:
    """The keys of ``tender-execution-<execution id>``: the step token and the gateway's URL
    (both of the SDK's URLs: the gateway serves the control paths too)."""
    values = {
        "CRAFT_AI_SDK_TOKEN": step_token(signing_key, execution_id),
        "CRAFT_AI_ENVIRONMENT_URL": gateway_url,
        "CRAFT_AI_CONTROL_URL": gateway_url,
    }
    return {SDK_ENVIRONMENT[name]: value for name, value in values.items()}


def execution_secret_lookup(signing_key: str, gateway_url: str) -> SecretLookup:
    """The embedded engine's execution Secrets: made on demand, as the engine starts each step;
    None for any other Secret."""

    async def lookup(secret_name: str) -> Mapping[str, str] | None:
        execution_id = execution_id_of_secret(secret_name)
        if execution_id is None:
            return None
        return execution_secret_data(signing_key, execution_id, gateway_url)

    return lookup
