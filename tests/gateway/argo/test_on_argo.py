"""What tender does on Argo beyond the shared acceptance suite: how executions look in Argo (and
its UI), what outlives a Workflow that Argo deleted, the variables' Secret, schedules fired by the
real controller, and what deleting a deployment takes with it."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from craft_ai_sdk import INPUT_OUTPUT_TYPES as T
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from argo_gateway import UI_URL, ArgoGateway
from gateway.engines.argo.permissions import ENVIRONMENT_SECRET
from polling import eventually
from tests.gateway.argo.serving import Served, create_pipeline, served

pytestmark = pytest.mark.argo

DOUBLE = {
    "src/double.py": """
        import os


        def double(number):
            print("doubling", number, "for", os.environ.get("GREETING", "nobody"))
            return {"doubled": number * 2}
    """
}


@pytest.fixture(scope="module")
def server(argo_gateway: ArgoGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A TTL of one second: Argo deletes each Workflow soon after it ends.
    root = tmp_path_factory.mktemp("argo-gateway")
    with served(argo_gateway, root, TENDER_ARGO_TTL_S="1") as gateway:
        yield gateway
    argo_gateway.cluster.delete_all()


@pytest.fixture
def doubler(server: Served, tmp_path: Path) -> str:
    name = f"double-{secrets.token_hex(3)}"
    create_pipeline(
        server.sdk(),
        name,
        tmp_path / "double",
        DOUBLE,
        "double",
        inputs=[Input("number", T.NUMBER)],
        outputs=[Output("doubled", T.NUMBER)],
    )
    return name


def test_an_execution_is_one_readable_workflow_whose_link_is_logged(
    server: Served, argo_gateway: ArgoGateway, doubler: str
) -> None:
    # The TTL may delete it at once: read the Workflow through the watch's own record of it.
    sdk = server.sdk()
    with argo_gateway.cluster.kube() as kube:
        execution_id = sdk.run_pipeline(doubler, inputs={"number": 2}, wait_for_completion=False)[
            "execution_id"
        ]
        workflow = kube.get(argo_gateway.cluster.path("workflows", execution_id))

    metadata, spec = workflow["metadata"], workflow["spec"]
    assert metadata["labels"]["tender.io/pipeline"] == doubler
    assert metadata["labels"]["tender.io/trigger"] == "run"
    assert metadata["annotations"]["workflows.argoproj.io/title"] == doubler
    assert spec["ttlStrategy"] == {"secondsAfterCompletion": 1}
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["archiveLogs"] is True
    assert spec["artifactRepositoryRef"]["key"] == "tender"
    link = f"{UI_URL}/workflows/{argo_gateway.cluster.namespace}/{execution_id}"
    eventually(lambda: link in server.logs(), "the Argo UI link in the gateway's log")
    assert sdk.get_pipeline_execution(execution_id)  # and it is the SDK's execution


def test_records_outputs_and_logs_outlive_the_workflow(
    server: Served, argo_gateway: ArgoGateway, doubler: str
) -> None:
    sdk = server.sdk()

    result = sdk.run_pipeline(doubler, inputs={"number": 21})
    execution_id = result["execution_id"]
    path = argo_gateway.cluster.path("workflows", execution_id)
    eventually(lambda: argo_gateway.cluster.find(path) is None, "Argo deleting the Workflow (TTL)")

    assert result["outputs"] == {"doubled": 42}
    [listed] = sdk.list_pipeline_executions(doubler)
    assert (listed["execution_id"], listed["status"]) == (execution_id, "Succeeded")
    assert listed["steps"][0]["status"] == "Succeeded"
    lines = sdk.get_pipeline_execution_logs(execution_id)
    assert "doubling 21 for nobody" in [line["message"] for line in lines]
    assert {line["step"] for line in lines} == {doubler}  # found without the Workflow
    assert sdk.get_pipeline_execution_output(execution_id, "doubled")["value"] == 42
    # Its own Secret (the step token) went when it ended.
    secret = f"/api/v1/namespaces/{argo_gateway.cluster.namespace}/secrets/tender-execution-"
    eventually(
        lambda: argo_gateway.cluster.find(secret + execution_id) is None, "the Secret's removal"
    )


def test_variables_reach_the_secret_and_the_steps(
    server: Served, argo_gateway: ArgoGateway, doubler: str
) -> None:
    sdk = server.sdk()
    secret = f"/api/v1/namespaces/{argo_gateway.cluster.namespace}/secrets/{ENVIRONMENT_SECRET}"
    sdk.create_or_update_environment_variable("GREETING", "the test")

    stored = argo_gateway.cluster.find(secret)
    assert stored is not None
    assert base64.b64decode(stored["data"]["GREETING"]) == b"the test"
    execution_id = sdk.run_pipeline(doubler, inputs={"number": 1})["execution_id"]
    lines = [line["message"] for line in sdk.get_pipeline_execution_logs(execution_id)]
    assert "doubling 1 for the test" in lines

    sdk.delete_environment_variable("GREETING")
    assert "GREETING" not in ((argo_gateway.cluster.find(secret) or {}).get("data") or {})


def test_a_schedule_fired_by_the_controller_is_recorded_and_deleted_with_its_deployment(
    server: Served, argo_gateway: ArgoGateway, doubler: str
) -> None:
    sdk = server.sdk()
    sdk.create_deployment(
        doubler,
        doubler,
        "periodic",
        schedule="0 3 * * *",
        inputs_mapping=[InputSource(pipeline_input_name="number", constant_value=5)],
        outputs_mapping=[OutputDestination(pipeline_output_name="doubled", is_null=True)],
    )
    cluster = argo_gateway.cluster
    [cron] = _crons(argo_gateway, doubler)
    # Seconds instead of a day: the controller fires it, not the test.
    with cluster.kube() as kube:
        kube.patch(cluster.path("cronworkflows", cron), {"spec": {"schedules": ["@every 3s"]}})

    def ran() -> bool:
        return any(e["status"] == "Succeeded" for e in sdk.list_pipeline_executions(doubler))

    eventually(ran, "an execution started by the CronWorkflow", timeout_s=90)
    execution = next(e for e in sdk.list_pipeline_executions(doubler) if e["end_date"])
    assert execution["deployment_name"] == doubler
    assert sdk.get_pipeline_execution(execution["execution_id"])["inputs"][0]["value"] == 5

    sdk.delete_deployment(doubler)
    assert _crons(argo_gateway, doubler) == []
    with cluster.kube() as kube:
        children = kube.get(
            cluster.path("workflows"), labelSelector=f"workflows.argoproj.io/cron-workflow={cron}"
        )
    assert children["items"] == []
    assert execution["execution_id"] in [
        e["execution_id"] for e in sdk.list_pipeline_executions(doubler)
    ]


def _crons(argo: ArgoGateway, deployment: str) -> list[str]:
    with argo.cluster.kube() as kube:
        listed = kube.get(
            argo.cluster.path("cronworkflows"), labelSelector=f"tender.io/deployment={deployment}"
        )
    return [item["metadata"]["name"] for item in listed["items"]]


def test_a_low_latency_endpoint_is_refused_on_argo(server: Served, doubler: str) -> None:
    sdk = server.sdk()

    with pytest.raises(SdkException) as raised:
        sdk.create_deployment(doubler, f"{doubler}-fast", "endpoint", mode="low_latency")

    assert raised.value.status_code == 400
    assert raised.value.name == "NotSupported"
    assert "not supported on Argo" in raised.value.message
    assert f"{doubler}-fast" not in [d["name"] for d in sdk.list_deployments()]
