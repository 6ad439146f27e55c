"""Names and ids Argo gives to nodes and pods (workflow/controller, workflow/util/pod_name.go):
both engines name them alike, so that a node id read from either means the same."""

from __future__ import annotations

__all__ = ["fnv32a", "node_id", "node_id_of_pod", "pod_name"]

_MAX_POD_PREFIX = 253 - 10 - 1  # k8s name limit minus the hash suffix


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(workflow_name: str, node_name: str) -> str:
    """The root node's id is the workflow's name; any other node's is `<wf>-<fnv32a(name)>`."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{fnv32a(node_name)}"


def pod_name(workflow_name: str, template_name: str, node_name: str) -> str:
    """POD_NAMES=v2: `<wf>-<template>-<fnv32a(node name)>`, the prefix cut at 242 characters."""
    prefix = f"{workflow_name}-{template_name}"[:_MAX_POD_PREFIX]
    return f"{prefix}-{fnv32a(node_name)}"


def node_id_of_pod(workflow_name: str, pod_name: str) -> str:
    """The id of the node a POD_NAMES=v2 pod ran: both end in the same `fnv32a(node name)`."""
    return f"{workflow_name}-{pod_name.rsplit('-', 1)[-1]}"
