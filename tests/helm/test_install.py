"""`helm install tender ./helm/tender -n argo` on the test cluster, then the SDK's core flows
through a gateway started with exactly the installed Deployment's configuration and identity
(tests/helm/pod_on_host.py says what stands in for the node): this proves the chart's
settings and RBAC, not just its YAML.

The store is the tests' PostgreSQL when there is one (the recommended setting), else SQLite.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES as T
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from argo_cluster import ArgoCluster
from gateway.engines.argo.permissions import ENVIRONMENT_SECRET
from loopback import free_port
from polling import eventually
from tests.gateway.argo.serving import create_pipeline
from tests.helm.chart import Helm
from tests.helm.pod_on_host import HostPod, service_account_kubeconfig
from tests.helm.release import (
    Release,
    postgres_url,
    prepare_namespace,
    values_for,
)
from tools.cluster.kube import Credentials, Kube

pytestmark = pytest.mark.argo

GREET = {
    "src/greet.py": """
        import os


        def greet(who, times):
            print("greeting", who, "for", os.environ.get("GREETER", "nobody"))
            return {"greeting": ("hello " + who + " ") * int(times)}
    """
}
GREET_IO = {
    "inputs": [Input("who", T.STRING), Input("times", T.NUMBER)],
    "outputs": [Output("greeting", T.STRING)],
}
# Where each kind the chart makes is read back from the API server.
API_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps/{name}",
    "Service": "/api/v1/namespaces/{ns}/services/{name}",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{name}",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{name}",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}",
    "Pod": "/api/v1/namespaces/{ns}/pods/{name}",
}


@pytest.fixture(scope="module")
def port() -> int:
    """The gateway's port: its external URL (a value of the install) names it."""
    return free_port()


@pytest.fixture(scope="module")
def release(
    helm: Helm, argo_cluster: ArgoCluster, port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """The chart installed as `tender` in Argo's namespace, on the port its replica will use."""
    folder = tmp_path_factory.mktemp("helm-install")
    cluster_helm = Helm(helm.binary, kubeconfig=argo_cluster.kubeconfig)
    installed = Release(cluster_helm, argo_cluster, "tender", argo_cluster.namespace, folder)
    with argo_cluster.kube() as kube:
        prepare_namespace(kube, argo_cluster, installed.namespace)
    database = "postgresql" if postgres_url() else "sqlite"
    installed.install(values_for(argo_cluster, f"http://127.0.0.1:{port}", database=database))
    try:
        yield installed
    finally:
        installed.uninstall()
        argo_cluster.delete_all()


@pytest.fixture(scope="module")
def gateway(
    release: Release, port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostPod]:
    root = tmp_path_factory.mktemp("helm-pod")
    with release.pod(root, port) as pod:
        yield pod


@pytest.fixture(scope="module")
def sdk(gateway: HostPod) -> Any:
    """The client, with the first token made as NOTES.txt says (`tender token create` in the
    gateway's container)."""
    from craft_ai_sdk import CraftAiSdk

    created = gateway.run("gateway", "token", "create", "--name", "first")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    return CraftAiSdk(
        sdk_token=token, environment_url=gateway.base_url, control_url=gateway.base_url
    )


def test_every_object_is_accepted_by_the_api_server(release: Release) -> None:
    manifests = release.manifests()
    kinds = sorted({m["kind"] for m in manifests})
    assert {"ConfigMap", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"} <= set(
        kinds
    )
    with release.cluster.kube() as kube:
        for manifest in manifests:
            meta = manifest["metadata"]
            path = API_PATHS[manifest["kind"]].format(ns=meta["namespace"], name=meta["name"])
            live = kube.get(path)
            assert live["metadata"]["labels"] == meta["labels"]
    status = release.helm.run("status", release.name, "-n", release.namespace).stdout
    assert "STATUS: deployed" in status


def test_the_gateway_passes_its_start_up_checks_as_the_charts_service_account(
    gateway: HostPod,
) -> None:
    """Its Role is all it has: the start-up checks (a SelfSubjectAccessReview per verb of the
    engine's Role) passed, or it would not serve."""
    assert f"serving {gateway.base_url}" in gateway.logs()
    with Kube(Credentials.from_kubeconfig(gateway.kubeconfig)) as kube:
        review = kube.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    namespace = gateway.deployment["metadata"]["namespace"]
    user = review["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:tender"
    answer = requests.get(f"{gateway.base_url}/healthz", timeout=30)
    assert answer.json() == {"status": "ok"}


def test_the_sdk_flows_pass_on_the_installed_gateway(
    sdk: Any, gateway: HostPod, release: Release, tmp_path: Path
) -> None:
    cluster = release.cluster
    name = f"greet-{secrets.token_hex(3)}"
    sdk.create_or_update_environment_variable("GREETER", "the chart")
    secret = cluster.find(f"/api/v1/namespaces/{cluster.namespace}/secrets/{ENVIRONMENT_SECRET}")
    assert secret is not None
    assert base64.b64decode(secret["data"]["GREETER"]) == b"the chart"

    create_pipeline(sdk, name, tmp_path / "greet", GREET, "greet", **GREET_IO)
    result = sdk.run_pipeline(name, inputs={"who": "argo", "times": 2})
    assert result["outputs"] == {"greeting": "hello argo hello argo "}
    execution_id = result["execution_id"]
    assert cluster.find(cluster.path("workflows", execution_id)) is not None
    lines = [line["message"] for line in sdk.get_pipeline_execution_logs(execution_id)]
    assert "greeting argo for the chart" in lines

    endpoint = sdk.create_deployment(
        name,
        f"{name}-ep",
        "endpoint",
        inputs_mapping=[InputSource(pipeline_input_name="times", constant_value=1)],
    )
    called = sdk.trigger_endpoint(f"{name}-ep", inputs={"who": "sdk"})
    assert called["outputs"] == {"greeting": "hello sdk "}
    answer = requests.post(
        f"{gateway.base_url}/endpoints/{name}-ep",
        headers={"Authorization": f"EndpointToken {endpoint['endpoint_token']}"},
        json={"who": "curl"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == {"greeting": {"value": "hello curl "}}

    sdk.create_deployment(
        name,
        f"{name}-cron",
        "periodic",
        schedule="0 3 * * *",
        inputs_mapping=[
            InputSource(pipeline_input_name="who", constant_value="cron"),
            InputSource(pipeline_input_name="times", constant_value=1),
        ],
        outputs_mapping=[OutputDestination(pipeline_output_name="greeting", is_null=True)],
    )
    [cron] = cluster.names("cronworkflows", f"tender.io/deployment={name}-cron")
    with cluster.kube() as kube:  # seconds instead of a day: the controller fires it
        kube.patch(cluster.path("cronworkflows", cron), {"spec": {"schedules": ["@every 3s"]}})

    def scheduled() -> list[dict[str, Any]]:
        return [
            e
            for e in sdk.list_pipeline_executions(name)
            if e["deployment_name"] == f"{name}-cron" and e["status"] == "Succeeded"
        ]

    eventually(lambda: bool(scheduled()), "a run fired by the CronWorkflow", timeout_s=120)
    sdk.update_deployment(f"{name}-cron", is_enabled=False)
    suspended = cluster.find(cluster.path("cronworkflows", cron))
    assert suspended is not None
    assert suspended["spec"]["suspend"] is True

    ids = [e["execution_id"] for e in sdk.list_pipeline_executions(name)]
    assert execution_id in ids
    assert len(ids) == len(set(ids))
    sdk.delete_pipeline(name, force_deployments_deletion=True)
    assert cluster.names("cronworkflows", f"tender.io/deployment={name}-cron") == []
    assert cluster.names("workflowtemplates", f"tender.io/deployment={name}-ep") == []
    sdk.delete_environment_variable("GREETER")


def test_helm_test_creates_its_pod_whose_check_passes_against_the_gateway(
    release: Release, gateway: HostPod
) -> None:
    # No kubelet runs the test pod: helm waits for it in vain, but the API server took it.
    done = release.helm.run(
        "test", release.name, "-n", release.namespace, "--timeout", "10s", check=False
    )
    [pod] = [
        m
        for m in _hooks(release)
        if m["kind"] == "Pod" and m["metadata"]["annotations"]["helm.sh/hook"] == "test"
    ]
    path = API_PATHS["Pod"].format(ns=release.namespace, name=pod["metadata"]["name"])
    live = release.cluster.find(path)
    assert live is not None, done.stderr
    assert "forbidden" not in done.stderr.lower()
    # Its check, as the pod would run it, against the gateway (TENDER_URL is its only input).
    [container] = live["spec"]["containers"]
    assert container["command"][:1] == ["python"]
    checked = subprocess.run(
        [sys.executable, *container["command"][1:], *container["args"]],
        env={"TENDER_URL": gateway.base_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"tender answers at {gateway.base_url}"


def test_the_steps_service_account_writes_task_results_and_nothing_else(
    release: Release, tmp_path: Path
) -> None:
    cluster = release.cluster
    data = cluster.find(f"/api/v1/namespaces/{cluster.namespace}/configmaps/tender")
    assert data is not None
    account = data["data"]["TENDER_ARGO_STEP_SERVICE_ACCOUNT"]
    admin = Credentials.from_kubeconfig(cluster.kubeconfig)
    with Kube(admin) as kube:
        kubeconfig = service_account_kubeconfig(
            kube, admin, cluster.namespace, account, tmp_path / "step.kubeconfig"
        )
    allowed = {
        (verb, resource): _may(kubeconfig, cluster.namespace, verb, resource)
        for verb in ("create", "patch", "get", "delete")
        for resource in ("workflowtaskresults", "workflows", "secrets", "pods")
    }
    assert {key for key, yes in allowed.items() if yes} == {
        ("create", "workflowtaskresults"),
        ("patch", "workflowtaskresults"),
    }


def _may(kubeconfig: Path, namespace: str, verb: str, resource: str) -> bool:
    group = "argoproj.io" if resource.startswith("workflow") else ""
    with Kube(Credentials.from_kubeconfig(kubeconfig)) as kube:
        review = kube.create(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                    }
                },
            },
        )
    return bool(review["status"]["allowed"])


def _hooks(release: Release) -> list[dict[str, Any]]:
    import yaml

    text = release.helm.run("get", "hooks", release.name, "-n", release.namespace).stdout
    return [d for d in yaml.safe_load_all(text) if d]
