"""The chart's pods against the restricted Pod Security Standard, as the API server enforces it.

A namespace labelled `pod-security.kubernetes.io/enforce: restricted` (and `warn`, which also
checks the pod templates of Deployments): the chart installs there without a warning, its
`helm test` pod is admitted, and so is a pod made from the Deployment's template (a dry run:
nothing is created). A pod without the chart's security settings is refused there, so the
check is real. (Argo's own namespace is not labelled: Argo's step pods are not the chart's.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from argo_cluster import ArgoCluster
from tests.helm.chart import Helm
from tests.helm.release import Release, postgres_url, prepare_namespace, values_for
from tools.cluster.kube import Kube, KubeError

pytestmark = pytest.mark.argo

NAMESPACE = RELEASE = "tender-restricted"  # its objects are named after the release
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}


@pytest.fixture(scope="module")
def release(
    helm: Helm, argo_cluster: ArgoCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Release, str]]:
    """The chart in the restricted namespace; helm's stderr (the API server's warnings)."""
    folder = tmp_path_factory.mktemp("helm-restricted")
    cluster_helm = Helm(helm.binary, kubeconfig=argo_cluster.kubeconfig)
    installed = Release(cluster_helm, argo_cluster, RELEASE, NAMESPACE, folder)
    with argo_cluster.kube() as kube:
        prepare_namespace(kube, argo_cluster, NAMESPACE, labels=RESTRICTED)
        namespace = kube.get(f"/api/v1/namespaces/{NAMESPACE}")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    database = "postgresql" if postgres_url() else "sqlite"
    values = values_for(argo_cluster, "http://tender.example.test", database=database)
    warnings = installed.install(values)
    try:
        yield installed, warnings
    finally:
        installed.uninstall()
        with argo_cluster.kube() as kube:
            kube.delete(f"/api/v1/namespaces/{NAMESPACE}")


def test_the_chart_installs_without_a_pod_security_warning(
    release: tuple[Release, str],
) -> None:
    installed, warnings = release
    assert "PodSecurity" not in warnings, warnings
    assert "deployed" in installed.helm.run("status", RELEASE, "-n", NAMESPACE).stdout


def test_a_pod_of_the_deployment_is_admitted(release: tuple[Release, str]) -> None:
    installed, _ = release
    template = installed.deployment()["spec"]["template"]
    with installed.cluster.kube() as kube:
        created = _dry_run_pod(kube, "tender-gateway", template["spec"])
    assert created["metadata"]["name"] == "tender-gateway"


def test_a_pod_without_the_charts_security_settings_is_refused(
    release: tuple[Release, str],
) -> None:
    installed, _ = release
    spec = copy.deepcopy(installed.deployment()["spec"]["template"]["spec"])
    del spec["securityContext"]
    for container in spec["containers"] + spec["initContainers"]:
        del container["securityContext"]
    with installed.cluster.kube() as kube, pytest.raises(KubeError) as refused:
        _dry_run_pod(kube, "tender-insecure", spec)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in str(refused.value)


def test_the_helm_test_pod_is_admitted(release: tuple[Release, str], tmp_path: Path) -> None:
    installed, _ = release
    # No kubelet runs it: helm waits in vain, but the pod was created (or refused) by then.
    done = installed.helm.run("test", RELEASE, "-n", NAMESPACE, "--timeout", "10s", check=False)
    assert "violates PodSecurity" not in done.stderr, done.stderr
    with installed.cluster.kube() as kube:
        pod = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{RELEASE}-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def _dry_run_pod(kube: Kube, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return kube.request(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
        dryRun="All",
    )
