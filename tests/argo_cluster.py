"""A real Argo cluster for the tests: etcd, kube-apiserver and workflow-controller on loopback.

The session fixture ``argo_cluster`` (registered in ``tests/conftest.py``) starts one cluster per
test run with tools/cluster (its README has the costs), its artifact repository a bucket on the
``s3_server`` of the run. The workflow-controller binds :6060 on all interfaces, so one cluster
per machine (a second run waits for the first's to stop): tests share it and clean up by label
(``ArgoCluster.delete_all``).

The binaries come from ``tools/cluster/build`` (cached outside the repository). Without them
the tests that need a cluster are skipped, unless ``TENDER_REQUIRE_CLUSTER`` is set, as
``scripts/test`` does: then they fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from s3_server import S3Server
from tools.cluster.cluster import (
    ArtifactRepository,
    Binaries,
    Cluster,
    ClusterError,
    start_cluster,
)
from tools.cluster.kube import Credentials, Kube, KubeError

__all__ = ["ArgoCluster", "argo_cluster"]

ARGO = "/apis/argoproj.io/v1alpha1"
FINISHED = {"Succeeded", "Failed", "Error"}


@dataclass(frozen=True)
class ArgoCluster:
    """Where the test cluster is, and its artifact repository (a bucket on the run's S3)."""

    kubeconfig: Path
    namespace: str
    api_url: str
    token: str  # the admin's (system:masters)
    s3: S3Server
    bucket: str
    logs: Path
    ca_file: Path  # the API server's certificate, self-signed
    # Its processes: the fault tests kill and restart the controller (kill_controller...).
    running: Cluster = field(repr=False, compare=False)

    def kube(self) -> Kube:
        return Kube(Credentials.from_kubeconfig(self.kubeconfig))

    def path(self, kind: str, name: str = "") -> str:
        """The API path of an Argo kind (`workflows`, ...) in the namespace, or of one object."""
        base = f"{ARGO}/namespaces/{self.namespace}/{kind}"
        return f"{base}/{name}" if name else base

    def find(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None if there is none (404)."""
        with self.kube() as kube:
            try:
                return kube.get(path)
            except KubeError as error:
                if error.status == 404:
                    return None
                raise

    def names(self, kind: str, selector: str) -> list[str]:
        """The names of the objects of an Argo ``kind`` that the label ``selector`` selects."""
        with self.kube() as kube:
            listed = kube.get(self.path(kind), labelSelector=selector)
        return [item["metadata"]["name"] for item in listed["items"]]

    def wait_for_workflow(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """The Workflow once finished; fails the test with its last state on timeout."""
        deadline = time.monotonic() + timeout
        with self.kube() as kube:
            while True:
                workflow = kube.get(self.path("workflows", name))
                phase = workflow.get("status", {}).get("phase")
                if phase in FINISHED:
                    return workflow
                if time.monotonic() > deadline:
                    state = workflow.get("status")
                    pytest.fail(f"workflow {name} still {phase!r} after {timeout}s: {state}")
                time.sleep(0.1)

    def delete_all(self) -> None:
        """Delete every Argo object and pod of the namespace (no garbage collector runs here)."""
        namespace = self.namespace
        with self.kube() as kube:
            for kind in ("cronworkflows", "workflows", "workflowtemplates", "workflowtaskresults"):
                kube.delete(self.path(kind))
            kube.delete(
                f"/api/v1/namespaces/{namespace}/pods",
                labelSelector="workflows.argoproj.io/workflow",
            )


@pytest.fixture(scope="session")
def argo_cluster(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArgoCluster]:
    """One cluster for the whole run (about 20 s to start); see the module's docstring."""
    try:
        Binaries.find()
    except ClusterError as error:
        reason = f"no test cluster: {error}"
        if os.environ.get("TENDER_REQUIRE_CLUSTER"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    bucket = s3_server.create_bucket()
    repository = ArtifactRepository(
        endpoint_url=s3_server.endpoint_url,
        bucket=bucket,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
        region=s3_server.region,
    )
    directory = tmp_path_factory.mktemp("argo-cluster")
    cluster = start_cluster(directory, repository)
    try:
        yield ArgoCluster(
            kubeconfig=cluster.kubeconfig,
            namespace=cluster.namespace,
            api_url=cluster.api_url,
            token=cluster.token,
            s3=s3_server,
            bucket=bucket,
            logs=directory / "logs",
            ca_file=directory / "pki" / "apiserver.crt",
            running=cluster,
        )
    finally:
        cluster.stop()
