"""Kubernetes and Argo naming rules, and deterministic shortening.

Rules come from Argo's ``workflow/validate/validate.go`` and Kubernetes' DNS-1123 label rule.
"""

from __future__ import annotations

import hashlib
import keyword
import re

__all__ = [
    "CRON_WORKFLOW_NAME_MAX",
    "GENERATE_NAME_MAX",
    "OBJECT_NAME_MAX",
    "is_dns_label",
    "is_identifier",
    "shorten",
]

# Argo refuses object names over 63 characters ("because of the limitation of Kubernetes
# label"), and CronWorkflow names over 52: children are named "<cron>-<10-digit unix time>".
OBJECT_NAME_MAX = 63
CRON_WORKFLOW_NAME_MAX = 52
# Kubernetes appends 5 random characters to a generateName and trims its base to 58.
GENERATE_NAME_MAX = 58

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HASH_LENGTH = 6


def is_dns_label(name: str, max_length: int = OBJECT_NAME_MAX) -> bool:
    return len(name) <= max_length and _DNS_LABEL.fullmatch(name) is not None


def is_identifier(name: str) -> bool:
    """ASCII Python identifiers: they become keyword arguments and Argo parameter names."""
    return _IDENTIFIER.fullmatch(name) is not None and not keyword.iskeyword(name)


def shorten(name: str, max_length: int) -> str:
    """Shorten to ``max_length`` with a hash suffix, so that two long names stay distinct."""
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    head = name[: max_length - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"
