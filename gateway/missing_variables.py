"""A step that reads an environment variable that does not exist.

Steps read the variables through ``secretKeyRef``s to the variables' Secret. When a key is
missing, the embedded engine fails the step at once, in Kubernetes' words ("couldn't find key K
in Secret NS/NAME"); a real kubelet keeps the pod waiting (``CreateContainerConfigError``) and
retries for ever, so that Argo leaves its node Pending with that message. The platform ends such
an execution at once on either engine: the tracker stops a Workflow one of whose pods waits for
a missing variable, with that message (``waiting_for_a_variable``), and ``gateway.failures``
says it in the user's words (``missing_variable``). A variable created meanwhile does not
revive it: the execution failed when it could not start, as on the embedded engine.
"""

from __future__ import annotations

import re

from compiler import CompileOptions
from gateway.engines.base import Manifest

__all__ = ["missing_variable", "waiting_for_a_variable"]

# Kubernetes' (and the embedded engine's) words for a secretKeyRef whose key is missing.
_MISSING_KEY = re.compile(r"couldn't find key (?P<key>\S+) in Secret (?:[^/\s]+/)?(?P<secret>\S+)")
_SECRET_NAME = CompileOptions().secret_name
_WAITING = "CreateContainerConfigError: "  # Argo's prefix: the container's waiting reason


def missing_variable(message: str) -> str | None:
    """The variable an engine's message says is missing from the variables' Secret, if any."""
    found = _MISSING_KEY.search(message)
    if found is None or found["secret"].rstrip(".,;") != _SECRET_NAME:
        return None
    return found["key"]


def waiting_for_a_variable(workflow: Manifest) -> str | None:
    """The message of a pod of this Workflow that waits for a missing variable, if one does."""
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    for node in nodes.values():
        message = node.get("message") or ""
        pending = node.get("type") == "Pod" and node.get("phase") == "Pending"
        if pending and missing_variable(message) is not None:
            return message.removeprefix(_WAITING)
    return None
