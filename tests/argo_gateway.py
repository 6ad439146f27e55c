"""What an operator sets up for ``tender serve`` on Argo, done on the test cluster.

The namespace gets an artifact repository for tender (a key of its ``artifact-repositories``
ConfigMap: tender's bucket and prefix, logs under ``logs/<workflow>/<pod>``), and the gateway an
identity of its own: a ServiceAccount bound to the Role of ``gateway.engines.argo.permissions``
and nothing else, whose token comes from the TokenRequest API (no controller-manager runs here).
``gateway_env`` is then the environment of a ``tender serve`` on it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from argo_cluster import ArgoCluster
from compiler.keys import LOGS_KEY_FORMAT
from gateway.engines.argo.permissions import ROLE_RULES
from tools.cluster.cluster import ARTIFACTS_SECRET
from tools.cluster.kube import Credentials, Kube, KubeError, write_kubeconfig

__all__ = ["ArgoGateway", "apply", "argo_gateway", "gateway_env", "grant", "put_repository"]

REPOSITORY_KEY = "tender"
KEY_PREFIX = "tender/"
SERVICE_ACCOUNT = "tender-gateway"
UI_URL = "https://argo.example.test"
# Steps run on the host's Python (the process kubelet): the pipelines' image says its version.
STEP_IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


@dataclass(frozen=True)
class ArgoGateway:
    """A namespace ready for tender, and a kubeconfig with the gateway's narrow identity."""

    cluster: ArgoCluster
    kubeconfig: Path  # the ServiceAccount's token: only the Role's permissions


@pytest.fixture(scope="session")
def argo_gateway(
    argo_cluster: ArgoCluster, tmp_path_factory: pytest.TempPathFactory
) -> ArgoGateway:
    folder = tmp_path_factory.mktemp("argo-gateway")
    with argo_cluster.kube() as kube:
        put_repository(kube, argo_cluster)
        kubeconfig = grant(kube, argo_cluster, SERVICE_ACCOUNT, ROLE_RULES, folder)
    return ArgoGateway(argo_cluster, kubeconfig)


def gateway_env(argo: ArgoGateway, kubeconfig: Path | None = None) -> dict[str, str]:
    """The settings of a ``tender serve`` on the test cluster (engine, storage, identity)."""
    cluster = argo.cluster
    return {
        **cluster.s3.settings_env(cluster.bucket, KEY_PREFIX),
        "TENDER_ENGINE": "argo",
        "KUBECONFIG": str(kubeconfig or argo.kubeconfig),
        "TENDER_ARGO_NAMESPACE": cluster.namespace,
        "TENDER_ARGO_ARTIFACT_REPOSITORY": REPOSITORY_KEY,
        "TENDER_ARGO_STEP_IMAGE": STEP_IMAGE,
        "TENDER_ARGO_UI_URL": UI_URL,
    }


def put_repository(kube: Kube, cluster: ArgoCluster) -> None:
    endpoint = urlsplit(cluster.s3.endpoint_url)
    repository = {
        "s3": {
            "bucket": cluster.bucket,
            "endpoint": endpoint.netloc,
            "insecure": endpoint.scheme == "http",
            "region": cluster.s3.region,
            "accessKeySecret": {"name": ARTIFACTS_SECRET, "key": "accesskey"},
            "secretKeySecret": {"name": ARTIFACTS_SECRET, "key": "secretkey"},
            "keyFormat": KEY_PREFIX + LOGS_KEY_FORMAT,
        }
    }
    apply(
        kube,
        f"/api/v1/namespaces/{cluster.namespace}/configmaps",
        {
            # Not the namespace's default: tender names its key (TENDER_ARGO_ARTIFACT_REPOSITORY),
            # and other Workflows keep the controller's repository.
            "metadata": {"name": "artifact-repositories"},
            "data": {REPOSITORY_KEY: yaml.safe_dump(repository)},
        },
    )


def grant(
    kube: Kube, cluster: ArgoCluster, name: str, rules: list[dict[str, Any]], folder: Path
) -> Path:
    """A ServiceAccount holding exactly ``rules`` in the namespace; its kubeconfig (a token
    from the TokenRequest API, valid for a day)."""
    namespace = cluster.namespace
    core = f"/api/v1/namespaces/{namespace}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    apply(kube, f"{core}/serviceaccounts", {"metadata": {"name": name}})
    apply(kube, f"{rbac}/roles", {"metadata": {"name": name}, "rules": rules})
    apply(
        kube,
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    requested = kube.create(
        f"{core}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400},
        },
    )
    admin = Credentials.from_kubeconfig(cluster.kubeconfig)
    kubeconfig = folder / f"{name}.kubeconfig"
    write_kubeconfig(
        kubeconfig, admin.server, requested["status"]["token"], admin.ca_pem, namespace
    )
    return kubeconfig


def apply(kube: Kube, collection: str, body: dict[str, Any]) -> None:
    """Create, or replace what a previous test left under the same name."""
    try:
        kube.create(collection, body)
    except KubeError as error:
        if error.status != 409:
            raise
        kube.request("PUT", f"{collection}/{body['metadata']['name']}", body)
