"""A Workflow's step logs: from the pod while it runs, from the archive once it ended.

Each Workflow the engine submits archives its logs (``archiveLogs``): when a pod ends, Argo's
executor uploads the ``main`` container's output as the ``main-logs`` artifact, which the node's
outputs then name. So a finished node's lines are read from the bucket, a running one's from
``pods/log``, and once Argo deleted the Workflow (its TTL) the lines are found by the artifact
repository's key format, ``logs/<workflow>/<pod>/main.log`` (``compiler.keys``), without it.

What the API gives is a container's output with stdout and stderr interleaved: every line is
reported as ``stdout``. ``pods/log?timestamps=true`` prefixes each line with the time the
kubelet read it; an archived log has no times, so its lines carry the time its node ended (or,
without the Workflow, the time it was archived).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from compiler.keys import logs_prefix
from gateway.engines.argo.client import KubeApiError, KubeClient
from gateway.engines.base import LogEntry
from gateway.engines.naming import node_id_of_pod
from gateway.storage import Storage
from gateway.storage.errors import ObjectNotFoundError as ObjectMissingError

__all__ = ["LogArchive", "archived_logs", "workflow_logs"]

_STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) (.*)$")
_NODE_ID_ANNOTATION = "workflows.argoproj.io/node-id"
_WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
_LOG_FILE = "main.log"


@dataclass(frozen=True)
class LogArchive:
    """Where archived logs are: the artifact repository's bucket, read with whole keys."""

    storage: Storage  # without a key prefix
    bucket: str
    key_prefix: str  # tender's, before `logs/...`


async def workflow_logs(
    client: KubeClient, namespace: str, workflow: dict[str, Any], archive: LogArchive | None
) -> list[LogEntry]:
    name = workflow["metadata"]["name"]
    nodes = [
        node
        for node in ((workflow.get("status") or {}).get("nodes") or {}).values()
        if node.get("type") == "Pod" and node.get("phase") not in (None, "Pending", "Skipped")
    ]
    nodes.sort(key=lambda node: (node.get("startedAt") or "", node["id"]))
    pods: dict[str, str] | None = None
    batches = []
    for node in nodes:
        lines = await _archived_node(node, archive)
        if lines is None:
            if pods is None:
                pods = await _pods(client, namespace, name)
            lines = await _pod_log(client, namespace, node, pods.get(node["id"]))
        batches.append(lines)
    return [entry for batch in batches for entry in batch]


async def archived_logs(archive: LogArchive, workflow_name: str) -> list[LogEntry]:
    """The lines of a Workflow that no longer exists, from the artifact repository alone."""
    prefix = archive.key_prefix + logs_prefix(workflow_name)
    objects = []
    token = None
    while True:
        page = await archive.storage.list(prefix, continuation_token=token)
        objects += [item for item in page.items if item.key.endswith(f"/{_LOG_FILE}")]
        token = page.next_token
        if token is None:
            break
    objects.sort(key=lambda item: (item.last_modified, item.key))
    contents = await asyncio.gather(*(archive.storage.read_bytes(item.key) for item in objects))
    entries = []
    for item, content in zip(objects, contents, strict=True):
        pod = item.key[len(prefix) :].split("/", 1)[0]
        node = {"id": node_id_of_pod(workflow_name, pod)}
        entries += _entries(node, pod, content, item.last_modified)
    return entries


async def _archived_node(node: dict[str, Any], archive: LogArchive | None) -> list[LogEntry] | None:
    """The node's archived lines; None when it has no archive this gateway can read."""
    if archive is None:
        return None
    artifacts = (node.get("outputs") or {}).get("artifacts") or []
    s3 = next((a.get("s3") or {} for a in artifacts if a.get("name") == "main-logs"), {})
    key = s3.get("key")
    if not key or s3.get("bucket", archive.bucket) != archive.bucket:
        return None
    try:
        content = await archive.storage.read_bytes(key)
    except ObjectMissingError:
        return None
    ended = _parse_time(node.get("finishedAt") or node.get("startedAt"))
    return _entries(node, _pod_of(key), content, ended)


async def _pods(client: KubeClient, namespace: str, workflow_name: str) -> dict[str, str]:
    """Node id to pod name, for the pods the Workflow still has."""
    listed = await client.get(
        f"/api/v1/namespaces/{namespace}/pods",
        labelSelector=f"{_WORKFLOW_LABEL}={workflow_name}",
    )
    return {
        pod["metadata"].get("annotations", {}).get(_NODE_ID_ANNOTATION, ""): pod["metadata"]["name"]
        for pod in listed.get("items", [])
    }


async def _pod_log(
    client: KubeClient, namespace: str, node: dict[str, Any], pod: str | None
) -> list[LogEntry]:
    if pod is None:
        return []
    try:
        text = await client.text(
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log", container="main", timestamps="true"
        )
    except KubeApiError as exc:
        if exc.status in (400, 404):  # gone, or its container has not started
            return []
        raise
    started = _parse_time(node.get("startedAt"))
    return _entries(node, pod, text.encode(), started)


def _entries(
    node: dict[str, Any], pod: str, content: bytes, default_time: datetime
) -> list[LogEntry]:
    entries = []
    for line in content.decode("utf-8", errors="replace").splitlines():
        when, text = _split_time(line, default_time)
        entries.append(
            LogEntry(
                node_id=node["id"],
                pod_name=pod,
                timestamp=when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                stream="stdout",
                content=text,
            )
        )
    return entries


def _split_time(line: str, default: datetime) -> tuple[datetime, str]:
    """``pods/log?timestamps=true`` writes ``<RFC 3339 nano> <line>``; a kubelet that ignores
    the option writes the line alone, which then takes ``default``."""
    match = _STAMPED.match(line)
    if match is None:
        return default, line
    seconds, fraction, zone, text = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{seconds}.{micros}{zone}"), text


def _parse_time(text: str | None) -> datetime:
    return datetime.fromisoformat(text) if text else datetime.now(UTC)


def _pod_of(key: str) -> str:
    """`.../<pod>/main.log` -> `<pod>`."""
    parts = key.rsplit("/", 2)
    return parts[-2] if len(parts) == 3 else ""
