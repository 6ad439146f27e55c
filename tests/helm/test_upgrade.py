"""`helm upgrade` with changed values keeps the data: the chart on SQLite (its claim is a host
folder here, kept by the replicas before and after, as a volume is), a pipeline and its
deployments made before the upgrade, a gateway of the new release after it. `helm uninstall`
then leaves the claim."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from craft_ai_sdk import CraftAiSdk
from craft_ai_sdk.io import InputSource

from argo_cluster import ArgoCluster
from loopback import free_port
from tests.gateway.argo.serving import create_pipeline
from tests.helm.chart import Helm
from tests.helm.release import Release, prepare_namespace, values_for
from tests.helm.test_install import GREET, GREET_IO

pytestmark = pytest.mark.argo


@pytest.fixture
def release(helm: Helm, argo_cluster: ArgoCluster, tmp_path: Path) -> Iterator[Release]:
    cluster_helm = Helm(helm.binary, kubeconfig=argo_cluster.kubeconfig)
    installed = Release(
        cluster_helm, argo_cluster, "tender-sqlite", argo_cluster.namespace, tmp_path
    )
    with argo_cluster.kube() as kube:
        prepare_namespace(kube, argo_cluster, installed.namespace)
    try:
        yield installed
    finally:
        installed.uninstall()
        argo_cluster.delete_all()


def test_an_upgrade_with_changed_values_keeps_the_data(release: Release, tmp_path: Path) -> None:
    cluster = release.cluster
    port = free_port()
    values = values_for(cluster, f"http://127.0.0.1:{port}", database="sqlite")
    release.install(values)
    before = release.deployment()
    name = f"kept-{secrets.token_hex(3)}"
    pod_root = tmp_path / "pod"  # the claim: the same folder for both replicas

    with release.pod(pod_root, port) as pod:
        created = pod.run("gateway", "token", "create", "--name", "before-upgrade")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        sdk = _sdk(token, pod.base_url)
        create_pipeline(sdk, name, tmp_path / "greet", GREET, "greet", **GREET_IO)
        ran = sdk.run_pipeline(name, inputs={"who": "before", "times": 1})
        sdk.create_deployment(
            name,
            f"{name}-ep",
            "endpoint",
            inputs_mapping=[InputSource(pipeline_input_name="times", constant_value=1)],
        )
        sdk.create_or_update_environment_variable("KEPT", "yes")

    values["config"]["tokenLifetimeS"] = 7200
    values["config"]["longPollS"] = 2
    release.install(values, verb="upgrade")
    after = release.deployment()
    annotations = "spec", "template", "metadata", "annotations"
    assert _at(after, annotations)["checksum/config"] != _at(before, annotations)["checksum/config"]
    assert after["metadata"]["generation"] > before["metadata"]["generation"]

    with release.pod(pod_root, port) as pod:
        assert pod.env("gateway")["TENDER_TOKEN_LIFETIME_S"] == "7200"
        sdk = _sdk(token, pod.base_url)  # the token made before the upgrade
        assert [p["pipeline_name"] for p in sdk.list_pipelines()] == [name]
        assert sdk.get_deployment(f"{name}-ep")["pipeline"]["name"] == name
        assert ran["execution_id"] in [
            e["execution_id"] for e in sdk.list_pipeline_executions(name)
        ]
        output = sdk.get_pipeline_execution_output(ran["execution_id"], "greeting")
        assert output["value"] == "hello before "
        assert [v["name"] for v in sdk.list_environment_variables()] == ["KEPT"]
        assert sdk.trigger_endpoint(f"{name}-ep", inputs={"who": "after"})["outputs"] == {
            "greeting": "hello after "
        }
        # The new setting is the one in force: access tokens now last two hours.
        refreshed = requests.post(
            f"{pod.base_url}/api/v1/auth/refresh", json={"refresh_token": token}, timeout=30
        ).json()["access_token"]
        claims = jwt.decode(refreshed, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 7200
        sdk.delete_pipeline(name, force_deployments_deletion=True)
    assert cluster.names("workflowtemplates", f"tender.io/deployment={name}-ep") == []

    release.uninstall()
    claim = f"/api/v1/namespaces/{release.namespace}/persistentvolumeclaims/tender-sqlite-data"
    kept = cluster.find(claim)
    assert kept is not None, "helm uninstall deleted the claim holding the store"
    with cluster.kube() as kube:
        kube.delete(claim)


def _sdk(token: str, url: str) -> Any:
    return CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)


def _at(thing: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        thing = thing[key]
    return thing
