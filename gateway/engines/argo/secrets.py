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
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping

from gateway.engines.argo.client import KubeApiError, KubeClient, Object
from gateway.engines.base import Manifest

__all__ = ["EXECUTION_LABEL", "EnvironmentSecret", "ExecutionSecretWriter"]

_MANAGED_BY = {"app.kubernetes.io/managed-by": "tender"}
EXECUTION_LABEL = "tender.io/execution"


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
    ) -> None:
        self._client = client
        self._path = f"/api/v1/namespaces/{namespace}/secrets"
        self._name_of = name_of  # the Secret of a Workflow name
        self._data_of = data_of  # its keys and values

    async def ensure(self, workflow: Manifest) -> None:
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
            await self._client.request("POST", self._path, body)
        except KubeApiError as exc:
            if exc.status != 409:
                raise

    async def remove(self, workflow: Manifest) -> None:
        name = self._name_of(workflow["metadata"]["name"])
        try:
            await self._client.request("DELETE", f"{self._path}/{name}")
        except KubeApiError as exc:
            if exc.status != 404:
                raise
