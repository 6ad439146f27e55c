"""Server-side metadata of new objects (name from generateName, uid, creationTimestamp), and
the phase labels Argo keeps on every Workflow."""

from __future__ import annotations

import copy
import secrets
import uuid
from datetime import datetime

from gateway.engines.base import Manifest
from gateway.engines.local.clock import format_time
from gateway.engines.local.status import COMPLETED_LABEL, FULFILLED, PHASE_LABEL

__all__ = ["generate_name", "new_object", "set_phase_labels"]

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s `utilrand.String`: no vowels, no ambiguous digits


def generate_name(prefix: str) -> str:
    """What the API server does with `generateName`: 5 random characters, the base cut to 58."""
    return prefix[:58] + "".join(secrets.choice(_ALPHABET) for _ in range(5))


def new_object(manifest: Manifest, namespace: str, now: datetime) -> Manifest:
    """A copy with the metadata the API server sets on creation (the name is left to the caller)."""
    created = copy.deepcopy(manifest)
    metadata: Manifest = created.setdefault("metadata", {})
    metadata["namespace"] = namespace
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = format_time(now)
    for key in ("resourceVersion", "generation"):
        metadata.pop(key, None)
    created.pop("status", None)
    return created


def set_phase_labels(workflow: Manifest, phase: str) -> None:
    labels: dict[str, str] = workflow["metadata"].setdefault("labels", {})
    if phase:
        labels[PHASE_LABEL] = phase
    labels[COMPLETED_LABEL] = "true" if phase in FULFILLED else "false"
