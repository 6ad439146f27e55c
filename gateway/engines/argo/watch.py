"""A Kubernetes watch on Workflows, as the Engine protocol's ``watch_workflows``.

The API server ends every watch after ``timeoutSeconds``; this iterator then opens the next one
from the last resource version it saw, so that its caller sees one unbroken stream. Bookmarks
(``allowWatchBookmarks``) move that version on while nothing changes, so that a resumed watch
rarely starts from a version the server no longer holds. When it does (``410 Gone``, as an HTTP
status or an ``ERROR`` event), ``WatchExpiredError`` tells the caller to list again.

The controller rewrites a running Workflow often (progress, durations, conditions): a MODIFIED
event that changes nothing a reader sees (phases, messages, outputs) is dropped, as the Engine
protocol has it ("events are transitions a reader can see").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.engines.argo.client import KubeApiError, KubeClient, Object
from gateway.engines.argo.objects import WORKFLOWS, readable
from gateway.engines.base import WatchEvent
from gateway.engines.errors import WatchExpiredError

__all__ = ["watch_workflows"]

_GONE = 410
_KINDS = ("ADDED", "MODIFIED", "DELETED")


async def watch_workflows(
    client: KubeClient,
    namespace: str,
    label_selector: str,
    resource_version: str,
    *,
    timeout_s: int,
    on_added: Callable[[Object], None] | None = None,
) -> AsyncIterator[WatchEvent]:
    path = WORKFLOWS.path(namespace)
    version = resource_version or await _current_version(client, path, label_selector)
    seen: dict[str, str] = {}  # name -> what a reader saw of it last
    while True:
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        try:
            async for line in client.lines(path, params, read_timeout_s=timeout_s + 30):
                event = json.loads(line)
                kind, item = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise _error(item)
                version = item["metadata"]["resourceVersion"]
                if kind not in _KINDS:  # BOOKMARK
                    continue
                workflow = readable(item, WORKFLOWS)
                name = workflow["metadata"]["name"]
                if kind == "DELETED":
                    seen.pop(name, None)
                else:
                    visible = _visible(workflow)
                    if kind == "MODIFIED" and seen.get(name) == visible:
                        continue
                    seen[name] = visible
                if kind == "ADDED" and on_added is not None:
                    on_added(workflow)
                yield WatchEvent(type=kind, object=workflow)
        except KubeApiError as exc:
            if exc.status == _GONE:
                raise WatchExpiredError(f"resource version {version} is too old") from exc
            raise


def _visible(workflow: Object) -> str:
    status = workflow.get("status") or {}
    nodes = status.get("nodes") or {}
    seen: list[Any] = [
        status.get("phase"),
        status.get("message"),
        status.get("outputs"),
        sorted((i, n.get("phase"), n.get("message"), n.get("outputs")) for i, n in nodes.items()),
    ]
    return json.dumps(seen, sort_keys=True, default=str)


async def _current_version(client: KubeClient, path: str, label_selector: str) -> str:
    """Where a watch of changes "after now" starts: a list of one item costs the least."""
    params = {"limit": "1"}
    if label_selector:
        params["labelSelector"] = label_selector
    listed = await client.get(path, **params)
    version: str = listed["metadata"]["resourceVersion"]
    return version


def _error(status: Object) -> Exception:
    code = int(status.get("code") or 0)
    message = str(status.get("message") or "")
    if code == _GONE:
        return WatchExpiredError(message)
    return KubeApiError(code, str(status.get("reason") or ""), message, [])
