"""The chart installed on the test cluster, next to its Argo, as an operator installs it.

What the operator has before `helm install`: Argo (the cluster's controller and CRDs), its
artifact repository (the namespace's `artifact-repositories` ConfigMap, key "tender", on the S3
bucket whose keys are in the Secret `argo-artifacts`), and a Secret holding the PostgreSQL URL.
The values are those a user sets (README, "Install on a cluster with Helm").
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from argo_cluster import ArgoCluster
from argo_gateway import KEY_PREFIX, REPOSITORY_KEY, STEP_IMAGE, apply, put_repository
from tests.helm.chart import CHART, Helm
from tests.helm.pod_on_host import HostPod, service_account_kubeconfig
from tools.cluster.cluster import ARTIFACTS_SECRET
from tools.cluster.kube import Credentials, Kube

__all__ = [
    "DATABASE_SECRET",
    "Release",
    "postgres_url",
    "prepare_namespace",
    "values_for",
]

DATABASE_SECRET = "tender-database"


def postgres_url() -> str | None:
    return os.environ.get("TENDER_TEST_DATABASE_URL")


def values_for(
    cluster: ArgoCluster, external_url: str, *, database: str = "postgresql"
) -> dict[str, Any]:
    """The values of an install on the test cluster (the bucket, its endpoint, the database)."""
    s3 = cluster.s3
    values: dict[str, Any] = {
        "config": {
            "externalUrl": external_url,
            # The steps run on the host (the process kubelet), where no Service name resolves:
            # they reach the replica where the tests' clients do.
            "internalUrl": external_url,
            "s3Bucket": cluster.bucket,
            "s3EndpointUrl": s3.endpoint_url,
            "s3Region": s3.region,
            "s3Prefix": KEY_PREFIX,
            "s3AddressingStyle": "path",
            "argoArtifactRepository": REPOSITORY_KEY,
            # Steps run on the host's Python (the process kubelet): the image names its version.
            "argoStepImage": STEP_IMAGE,
            "longPollS": 5,
        },
        "s3Credentials": {
            "existingSecret": ARTIFACTS_SECRET,
            "accessKeyIdKey": "accesskey",
            "secretAccessKeyKey": "secretkey",
        },
        "database": {"type": database},
    }
    if database == "postgresql":
        values["database"]["postgresql"] = {"existingSecret": DATABASE_SECRET}
    return values


@dataclass
class Release:
    helm: Helm  # with the cluster's admin kubeconfig
    cluster: ArgoCluster
    name: str
    namespace: str
    folder: Path

    def install(self, values: dict[str, Any], *extra: str, verb: str = "install") -> str:
        """``helm install`` (or ``upgrade``) with ``values``; helm's stderr (its warnings)."""
        file = self.folder / f"values-{verb}.yaml"
        file.write_text(yaml.safe_dump(values))
        done = self.helm.run(verb, self.name, CHART, "-n", self.namespace, "-f", file, *extra)
        return done.stderr

    def uninstall(self) -> None:
        self.helm.run("uninstall", self.name, "-n", self.namespace, check=False)

    def manifests(self) -> list[dict[str, Any]]:
        """What helm installed (``helm get manifest``)."""
        text = self.helm.run("get", "manifest", self.name, "-n", self.namespace).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def deployment(self) -> dict[str, Any]:
        """The gateway's Deployment, as the API server holds it."""
        [name] = [m["metadata"]["name"] for m in self.manifests() if m["kind"] == "Deployment"]
        with self.cluster.kube() as kube:
            return kube.get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}")

    @contextlib.contextmanager
    def pod(self, root: Path, port: int) -> Iterator[HostPod]:
        """A replica of the gateway, as its own ServiceAccount; stopped after. Fails if it
        wrote a traceback."""
        deployment = self.deployment()
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        root.mkdir(parents=True, exist_ok=True)
        admin = Credentials.from_kubeconfig(self.cluster.kubeconfig)
        with Kube(admin) as kube:
            kubeconfig = service_account_kubeconfig(
                kube, admin, self.namespace, account, root / "service-account.kubeconfig"
            )
            pod = HostPod(deployment, kube, kubeconfig, root, port)
            pod.start()
            try:
                yield pod
            finally:
                pod.stop()
        assert "Traceback" not in pod.logs(), pod.logs()


def prepare_namespace(
    kube: Kube, cluster: ArgoCluster, namespace: str, labels: dict[str, str] | None = None
) -> None:
    """What Argo's install and the operator leave in ``namespace`` before tender's chart: the
    artifact repository (in Argo's namespace), the database's Secret."""
    if namespace == cluster.namespace:
        put_repository(kube, cluster)
    else:
        apply(kube, "/api/v1/namespaces", {"metadata": {"name": namespace, "labels": labels}})
    database = postgres_url()
    if database:
        apply(
            kube,
            f"/api/v1/namespaces/{namespace}/secrets",
            {
                "metadata": {"name": DATABASE_SECRET},
                "data": {"url": base64.b64encode(database.encode()).decode()},
            },
        )
