"""The Secrets the Argo engine writes: the environment variables', and each execution's.

**The environment variables' Secret** is kept in step with the store.

The store holds the variables; steps read them from the Secret the manifests name
(``secretKeyRef``). At start-up the Secret is written whole from the store (another gateway, or
an operator, may have left it behind); each change is then a merge patch of the keys it sets or
removes, so that changes made by several gateways at once do not undo each other. A value never
appears in a log line or an error message; the API does not echo a Secret's data in errors.

**Each execution's Secret** (``gateway.execution_secrets``) is owned by its Workflow (its
``uid``), so that the garbage collector deletes it with the Workflow; it is created once (409
AlreadyExists is success: the content is the same) and deleted when the Workflow ended.

The Workflow's pod waits for its Secret, so a creation is retried until it holds: an API that is
busy (a burst of submissions: 429, 5xx, a timeout) or briefly away is tried again with a growing
pause, for up to ``give_up_s``. The request that submitted the Workflow and the tracker that saw
it appear both ask for the Secret: the second asks while the first creates it, and returns. At
most ``concurrency`` of these calls are in flight, so that they never take all the connections
that users' requests wait for.
"""

from __future__ import annotations

import asyncio
import base64
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping

from gateway.engines.argo.client import KubeApiError, KubeClient, Object
from gateway.engines.base import Manifest
from gateway.engines.errors import EngineUnavailableError

__all__ = ["EXECUTION_LABEL", "EnvironmentSecret", "ExecutionSecretWriter"]

_MANAGED_BY = {"app.kubernetes.io/managed-by": "tender"}
EXECUTION_LABEL = "tender.io/execution"
_BUSY = frozenset({408, 429, 500, 502, 503, 504})  # the API's answers worth another try
_REMEMBERED = 10_000  # Secrets known to exist (the latest ones: forgetting one costs a 409)


class EnvironmentSecret:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        load: Callable[[], Awaitable[Mapping[str, str]]],
    ) -> None:
        self._client = client
        self._path = f"/api/v1/namespaces/{namespace}/secrets"
        self._name = name
        self._load = load  # every variable, from the store

    async def sync(self) -> None:
        """Write the whole Secret from the store (create it if it is missing)."""
        data = _encoded(await self._load())
        body: Object = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self._name, "labels": _MANAGED_BY},
            "type": "Opaque",
            "data": data,
        }
        try:
            await self._client.request("PUT", f"{self._path}/{self._name}", body)
        except KubeApiError as exc:
            if exc.status != 404:
                raise
            await self._client.request("POST", self._path, body)

    async def changed(self, changes: Mapping[str, str | None]) -> None:
        """Set (a value) or remove (None) these keys, as the store now holds them."""
        patch = {"data": {k: None if v is None else _b64(v) for k, v in changes.items()}}
        try:
            await self._client.request("PATCH", f"{self._path}/{self._name}", patch)
        except KubeApiError as exc:
            if exc.status != 404:
                raise
            await self.sync()


def _encoded(values: Mapping[str, str]) -> dict[str, str]:
    return {name: _b64(value) for name, value in values.items()}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class ExecutionSecretWriter:
    """``gateway.execution_secrets.ExecutionSecrets`` on a cluster."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name_of: Callable[[str], str],
        data_of: Callable[[str], dict[str, str]],
        *,
        concurrency: int = 8,
        retry_s: float = 0.5,
        max_retry_s: float = 10.0,
        give_up_s: float = 600.0,
    ) -> None:
        self._client = client
        self._path = f"/api/v1/namespaces/{namespace}/secrets"
        self._name_of = name_of  # the Secret of a Workflow name
        self._data_of = data_of  # its keys and values
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._give_up_s = give_up_s
        self._made: OrderedDict[str, None] = OrderedDict()  # Workflows whose Secret exists
        self._making: set[str] = set()

    async def ensure(self, workflow: Manifest) -> None:
        """Create the Workflow's Secret, unless it exists or another call is creating it."""
        name = workflow["metadata"]["name"]
        if name in self._made or name in self._making:
            return
        self._making.add(name)
        try:
            await self._create(workflow)
        finally:
            self._making.discard(name)

    async def remove(self, workflow: Manifest) -> None:
        workflow_name = workflow["metadata"]["name"]
        self._made.pop(workflow_name, None)
        try:
            await self._call("DELETE", f"{self._path}/{self._name_of(workflow_name)}")
        except KubeApiError as exc:
            if exc.status != 404:
                raise

    async def _create(self, workflow: Manifest) -> None:
        metadata = workflow["metadata"]
        body: Object = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self._name_of(metadata["name"]),
                "labels": {**_MANAGED_BY, EXECUTION_LABEL: metadata["name"]},
                "ownerReferences": [
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Workflow",
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                    }
                ],
            },
            "type": "Opaque",
            "data": _encoded(self._data_of(metadata["name"])),
        }
        try:
            await self._call("POST", self._path, body)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        self._made[metadata["name"]] = None
        while len(self._made) > _REMEMBERED:
            self._made.popitem(last=False)

    async def _call(self, method: str, path: str, body: Object | None = None) -> None:
        """One call, tried again while the API is busy or away, for up to ``give_up_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._give_up_s
        pause = self._retry_s
        while True:
            try:
                async with self._slots:
                    await self._client.request(method, path, body)
                return
            except KubeApiError as exc:
                if exc.status not in _BUSY or loop.time() + pause > deadline:
                    raise
            except EngineUnavailableError:
                if loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._max_retry_s)
