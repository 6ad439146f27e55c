"""Each execution's own Secret (``compiler.execution_secret``: the step token and the gateway's
URL), provided by whatever runs the steps.

The embedded engine resolves the Secret's keys itself when a step starts
(``step_tokens.execution_secret_lookup``): nothing to write. On a cluster the Secret must exist
before the pod can start: the gateway creates it right after submitting a Workflow, and for
Workflows it did not submit (a CronWorkflow's) when the tracker first sees them; it deletes it
once the Workflow ended (the step token is revoked by then anyway, ``step_scope``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from gateway.engines.base import Manifest
from gateway.engines.errors import EngineError

__all__ = ["ExecutionSecrets", "NoExecutionSecrets", "provide_secret", "withdraw_secret"]

_log = logging.getLogger("tender.execution_secrets")


class ExecutionSecrets(Protocol):
    async def ensure(self, workflow: Manifest) -> None:
        """The Workflow's Secret exists, or another call is making it (asking twice is no
        error). A busy API is tried again before this gives up."""
        ...

    async def remove(self, workflow: Manifest) -> None:
        """The Workflow ended or is gone: its Secret goes (a missing one is no error)."""
        ...


class NoExecutionSecrets:
    async def ensure(self, workflow: Manifest) -> None:
        return None

    async def remove(self, workflow: Manifest) -> None:
        return None


async def provide_secret(secrets: ExecutionSecrets, workflow: Manifest) -> None:
    """``ensure``, in the background: a failure is logged; the tracker tries again when it sees
    the Workflow (its ADDED event, or the next listing, as after the API was away)."""
    try:
        await secrets.ensure(workflow)
    except EngineError as exc:
        _log.warning("the Secret of %s: %s", workflow["metadata"]["name"], exc)


async def withdraw_secret(secrets: ExecutionSecrets, workflow: Manifest) -> None:
    """``remove``, in the background; one left behind goes with its Workflow (it owns it)."""
    try:
        await secrets.remove(workflow)
    except EngineError as exc:
        _log.warning("the Secret of %s: %s", workflow["metadata"]["name"], exc)
