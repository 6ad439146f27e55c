"""Each engine with what a test needs around it, for the contract suite (test_contract.py).

``local``: a LocalEngine on SQLite, its Secrets a dictionary. ``argo``: an ArgoEngine on the test
cluster, with the gateway's narrow identity (``argo_gateway``), its Secrets real ones; every Argo
object and pod of the namespace is deleted after each test.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from argo_gateway import KEY_PREFIX, ArgoGateway
from gateway.engines.argo import (
    ArgoEngine,
    ArgoEngineSettings,
    KubeClient,
    LogArchive,
    load_credentials,
)
from gateway.engines.base import Engine, Manifest
from gateway.engines.local import LocalEngine, LocalEngineSettings
from gateway.storage.s3 import S3Config, open_s3_storage
from gateway.store import Database

__all__ = ["FINISHED", "Kit", "KitFactory", "engine_kit"]

FINISHED = ("Succeeded", "Failed", "Error")
_TEST_LABEL = "tender.io/contract-test"


@dataclass
class Kit:
    kind: str  # "local" or "argo"
    engine: Engine
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    argo: ArgoGateway | None = None

    async def wait(self, name: str, timeout_s: float = 60) -> Manifest:
        """The Workflow once finished (tests may poll; the gateway never does)."""
        deadline = time.monotonic() + timeout_s
        while True:
            workflow = await self.engine.get_workflow(name)
            if workflow["status"].get("phase") in FINISHED:
                return workflow
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not finished after {timeout_s} s: {workflow['status']}")
            await asyncio.sleep(0.1)

    async def put_secret(self, name: str, data: dict[str, str]) -> None:
        if self.argo is None:
            self.secrets[name] = dict(data)
            return
        cluster = self.argo.cluster
        body = {
            "metadata": {"name": name, "labels": {_TEST_LABEL: "true"}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }

        def put() -> None:
            with cluster.kube() as kube:
                kube.create(f"/api/v1/namespaces/{cluster.namespace}/secrets", body)

        await asyncio.to_thread(put)


KitFactory = Callable[[], AbstractAsyncContextManager[Kit]]


@pytest.fixture(params=["local", pytest.param("argo", marks=pytest.mark.argo)])
def engine_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KitFactory]:
    """``async with engine_kit() as kit:`` (inside the test's own event loop)."""
    if request.param == "argo":
        argo: ArgoGateway = request.getfixturevalue("argo_gateway")
        yield lambda: _argo_kit(argo)
        _clean(argo)
    else:
        yield lambda: _local_kit(tmp_path)


@asynccontextmanager
async def _local_kit(tmp_path: Path) -> AsyncIterator[Kit]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.upgrade()
    kit = Kit("local", engine=None)  # type: ignore[arg-type]

    async def lookup(name: str) -> Mapping[str, str] | None:
        return kit.secrets.get(name)

    engine = LocalEngine(
        db,
        LocalEngineSettings(data_dir=tmp_path / "engine", kill_grace_seconds=0.5),
        secrets=lookup,
    )
    kit.engine = engine
    await engine.start()
    try:
        yield kit
    finally:
        await engine.close()
        db.dispose()


@asynccontextmanager
async def _argo_kit(argo: ArgoGateway) -> AsyncIterator[Kit]:
    cluster = argo.cluster
    client = KubeClient(load_credentials({"KUBECONFIG": str(argo.kubeconfig)}))
    s3 = cluster.s3
    config = S3Config(
        bucket=cluster.bucket,
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        addressing_style="path",
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key,
    )
    try:
        async with open_s3_storage(config) as bucket:
            settings = ArgoEngineSettings(
                namespace=cluster.namespace, ttl_s=None, pod_gc=None, artifact_repository="tender"
            )
            engine = ArgoEngine(client, settings, LogArchive(bucket, cluster.bucket, KEY_PREFIX))
            yield Kit("argo", engine, argo=argo)
    finally:
        await client.close()


def _clean(argo: ArgoGateway) -> None:
    """Every Argo object and pod of the namespace, and the Secrets the test made."""
    cluster = argo.cluster
    cluster.delete_all()
    with cluster.kube() as kube:
        kube.delete(f"/api/v1/namespaces/{cluster.namespace}/secrets", labelSelector=_TEST_LABEL)
