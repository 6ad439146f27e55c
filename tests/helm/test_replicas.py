"""Two replicas of the installed gateway on one PostgreSQL and one cluster, as a Service spreads
requests over them: whichever replica answers, an execution started on the other is followed to
its end (long-polls included); no execution is recorded twice, nor a schedule fired twice (Argo's
controller fires CronWorkflows, each replica watches their Workflows)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from craft_ai_sdk import CraftAiSdk
from craft_ai_sdk.io import InputSource, OutputDestination

from argo_cluster import ArgoCluster
from loopback import free_port
from polling import eventually
from tests.gateway.argo.serving import create_pipeline
from tests.helm.chart import Helm
from tests.helm.pod_on_host import HostPod
from tests.helm.release import Release, postgres_url, prepare_namespace, values_for
from tests.helm.test_install import GREET, GREET_IO

pytestmark = [
    pytest.mark.argo,
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_url(), reason="TENDER_TEST_DATABASE_URL is not set"),
]
_POLLS = 300  # each is held by the server; this only stops a broken server looping


@pytest.fixture(scope="module")
def replicas(
    helm: Helm, argo_cluster: ArgoCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HostPod, HostPod]]:
    folder = tmp_path_factory.mktemp("helm-replicas")
    cluster_helm = Helm(helm.binary, kubeconfig=argo_cluster.kubeconfig)
    release = Release(cluster_helm, argo_cluster, "tender-ha", argo_cluster.namespace, folder)
    with argo_cluster.kube() as kube:
        prepare_namespace(kube, argo_cluster, release.namespace)
    ports = free_port(), free_port()
    values = values_for(argo_cluster, f"http://127.0.0.1:{ports[0]}")
    values["replicaCount"] = 2
    release.install(values)
    try:
        assert release.deployment()["spec"]["replicas"] == 2
        with (
            release.pod(folder / "a", ports[0]) as a,
            release.pod(folder / "b", ports[1]) as b,
        ):
            yield a, b
    finally:
        release.uninstall()
        argo_cluster.delete_all()


@pytest.fixture(scope="module")
def token(replicas: tuple[HostPod, HostPod]) -> str:
    created = replicas[0].run("gateway", "token", "create", "--name", "replicas")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@pytest.fixture(scope="module")
def pipeline(replicas: tuple[HostPod, HostPod], token: str, tmp_path_factory: Any) -> str:
    name = f"greet-{secrets.token_hex(3)}"
    folder: Path = tmp_path_factory.mktemp("greet")
    create_pipeline(_sdk(replicas[0], token), name, folder, GREET, "greet", **GREET_IO)
    return name


def test_an_execution_started_on_one_replica_is_long_polled_on_the_other(
    replicas: tuple[HostPod, HostPod], token: str, pipeline: str
) -> None:
    a, b = replicas
    started = _sdk(a, token).run_pipeline(
        pipeline, inputs={"who": "a", "times": 1}, wait_for_completion=False
    )
    execution_id = started["execution_id"]
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {_access_token(b, token)}"
        url = f"{b.base_url}/api/v1/executions/{execution_id}/outputs?wait_for_completion=true"
        for _ in range(_POLLS):
            answer = http.get(url, allow_redirects=False, timeout=120)
            if answer.status_code != 307:
                break
        assert answer.status_code == 200, answer.text
    outputs = {o["pipeline_output_name"]: o["value"] for o in answer.json()["outputs"]}
    assert outputs == {"greeting": "hello a "}
    for replica in (a, b):
        listed = _sdk(replica, token).list_pipeline_executions(pipeline)
        assert [e["execution_id"] for e in listed].count(execution_id) == 1


def test_an_endpoint_made_on_one_replica_answers_on_the_other(
    replicas: tuple[HostPod, HostPod], token: str, pipeline: str
) -> None:
    a, b = replicas
    endpoint = _sdk(a, token).create_deployment(
        pipeline,
        f"{pipeline}-ep",
        "endpoint",
        inputs_mapping=[InputSource(pipeline_input_name="times", constant_value=1)],
    )
    answer = requests.post(
        f"{b.base_url}/endpoints/{pipeline}-ep",
        headers={"Authorization": f"EndpointToken {endpoint['endpoint_token']}"},
        json={"who": "b"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == {"greeting": {"value": "hello b "}}


def test_a_schedule_fires_once_per_tick_whichever_replicas_watch(
    replicas: tuple[HostPod, HostPod], token: str, pipeline: str, argo_cluster: ArgoCluster
) -> None:
    a, b = replicas
    cluster = argo_cluster
    deployment = f"{pipeline}-cron"
    _sdk(b, token).create_deployment(
        pipeline,
        deployment,
        "periodic",
        schedule="0 3 * * *",
        inputs_mapping=[
            InputSource(pipeline_input_name="who", constant_value="cron"),
            InputSource(pipeline_input_name="times", constant_value=1),
        ],
        outputs_mapping=[OutputDestination(pipeline_output_name="greeting", is_null=True)],
    )
    [cron] = cluster.names("cronworkflows", f"tender.io/deployment={deployment}")
    children = f"workflows.argoproj.io/cron-workflow={cron}"
    with cluster.kube() as kube:
        # A tick every 2 s, and every run kept (Argo would delete all but the last 3).
        kube.patch(
            cluster.path("cronworkflows", cron),
            {"spec": {"schedules": ["@every 2s"], "successfulJobsHistoryLimit": 100}},
        )
    eventually(
        lambda: len(cluster.names("workflows", children)) >= 4,
        "four runs of the schedule",
        timeout_s=180,
    )
    _sdk(a, token).update_deployment(deployment, is_enabled=False)
    time.sleep(3)  # a tick already under way when the CronWorkflow was suspended
    fired = set(cluster.names("workflows", children))

    def recorded(replica: HostPod) -> list[str]:
        listed = _sdk(replica, token).list_pipeline_executions(pipeline)
        return [e["execution_id"] for e in listed if e["deployment_name"] == deployment]

    eventually(lambda: set(recorded(a)) >= fired, "a record of each run", timeout_s=180)
    for replica in (a, b):
        ids = recorded(replica)
        assert len(ids) == len(set(ids)), f"recorded twice: {ids}"
        assert set(ids) == fired
        assert "Traceback" not in replica.logs(), replica.logs()


def _sdk(replica: HostPod, token: str) -> Any:
    return CraftAiSdk(
        sdk_token=token, environment_url=replica.base_url, control_url=replica.base_url
    )


def _access_token(replica: HostPod, token: str) -> str:
    answer = requests.post(
        f"{replica.base_url}/api/v1/auth/refresh", json={"refresh_token": token}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    access: str = answer.json()["access_token"]
    return access
