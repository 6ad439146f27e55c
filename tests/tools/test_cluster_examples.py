"""tender's four compiled examples run on the real Argo controller, submitted to the API server.

The same manifests as `tender compile examples/*.yaml`, with the code archives they reference
uploaded to the artifact repository first, and each execution's Secret created as the gateway
would (as tests/gateway/engines/test_compiled_examples.py prepares them for the embedded
engine); they reach the phases and outputs real Argo gives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from argo_cluster import ArgoCluster
from compiler import compile_document, parse_document
from compiler.execution_secret import EXECUTION_SECRET_PREFIX, execution_secret_name
from compiler.keys import code_key, datastore_key
from gateway.archives import pack_code_archive
from gateway.step_tokens import execution_secret_data
from tools.cluster.kube import KubeError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = [pytest.mark.timeout(600), pytest.mark.argo]


@pytest.fixture(autouse=True)
def _clean(argo_cluster: ArgoCluster) -> Iterator[None]:
    yield
    argo_cluster.delete_all()
    with argo_cluster.kube() as kube:
        secrets = kube.get(f"/api/v1/namespaces/{argo_cluster.namespace}/secrets")["items"]
        for secret in secrets:
            name = secret["metadata"]["name"]
            if name.startswith(EXECUTION_SECRET_PREFIX) or name == "tender-environment":
                kube.delete(f"/api/v1/namespaces/{argo_cluster.namespace}/secrets/{name}")


def _add_execution_secret(cluster: ArgoCluster, workflow: str) -> None:
    """What the gateway does for each execution; a step waits for it, as on a real kubelet."""
    data = execution_secret_data("k" * 48, workflow, "http://127.0.0.1:9")
    body = {"metadata": {"name": execution_secret_name(workflow)}, "stringData": data}
    with cluster.kube() as kube:
        try:
            kube.create(f"/api/v1/namespaces/{cluster.namespace}/secrets", body)
        except KubeError as error:  # a gateway following the cluster made it already
            if error.status != 409:
                raise


def _put(cluster: ArgoCluster, key: str, body: bytes) -> None:
    cluster.s3.client().put_object(Bucket=cluster.bucket, Key=key, Body=body)


def _get(cluster: ArgoCluster, key: str) -> bytes:
    body: bytes = cluster.s3.client().get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
    return body


def _load(cluster: ArgoCluster, name: str) -> dict[str, Any]:
    """The example's single manifest, with its pipeline's code archive in the bucket."""
    document = parse_document((EXAMPLES / name).read_text())
    folder = document.pipeline.container_config.local_folder
    assert folder is not None
    _put(cluster, code_key(document.pipeline.pipeline_name), pack_code_archive(EXAMPLES / folder))
    [manifest] = compile_document(document)
    return manifest


def _create(cluster: ArgoCluster, manifest: dict[str, Any]) -> str:
    kind = {"Workflow": "workflows", "WorkflowTemplate": "workflowtemplates"}.get(
        manifest["kind"], "cronworkflows"
    )
    with cluster.kube() as kube:
        created = kube.create(cluster.path(kind), manifest)
    name: str = created["metadata"]["name"]
    if kind == "workflows":
        _add_execution_secret(cluster, name)
    return name


def _outputs(workflow: dict[str, Any]) -> dict[str, Any]:
    root = workflow["status"]["nodes"][workflow["metadata"]["name"]]
    return {p["name"]: json.loads(p["value"]) for p in root["outputs"].get("parameters", [])}


def test_hello_runs_and_keeps_braces(argo_cluster: ArgoCluster) -> None:
    name = _create(argo_cluster, _load(argo_cluster, "hello.yaml"))
    workflow = argo_cluster.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert _outputs(workflow) == {"greeting": "Hello, {{world}}.", "letters": 10}


def test_multi_step_etl_fans_in_and_writes_a_file(argo_cluster: ArgoCluster) -> None:
    name = _create(argo_cluster, _load(argo_cluster, "etl.yaml"))
    workflow = argo_cluster.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert _outputs(workflow) == {"stats": {"count": 3, "total": 24.0, "mean": 8.0}}
    phases = {n["displayName"]: n["phase"] for n in workflow["status"]["nodes"].values()}
    assert phases == {
        name: "Succeeded",
        "parse": "Succeeded",
        "summarise": "Succeeded",
        "write-report": "Succeeded",
    }
    report = _get(argo_cluster, f"executions/{name}/write-report/report")
    assert report == b"# Report\n\n- 6\n- 8\n- 10\n\n3 numbers, total 24\n"


def test_endpoint_template_takes_each_calls_inputs(argo_cluster: ArgoCluster) -> None:
    template = _create(argo_cluster, _load(argo_cluster, "word-count-endpoint.yaml"))
    _put(argo_cluster, "inputs/call-1/document", b"the cat and the hat and THE bat")
    parameters = {"document": "inputs/call-1/document", "limit": "2"}
    name = _create(
        argo_cluster,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": f"{template}-"},
            "spec": {
                "workflowTemplateRef": {"name": template},
                "arguments": {
                    "parameters": [{"name": k, "value": v} for k, v in parameters.items()]
                },
            },
        },
    )
    workflow = argo_cluster.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert _outputs(workflow) == {"counts": {"the": 3, "and": 2}, "total": 8}


def test_periodic_report_reads_the_datastore_and_a_secret(argo_cluster: ArgoCluster) -> None:
    manifest = _load(argo_cluster, "nightly-report.yaml")
    # Its real schedule is 02:30 UTC: fire within seconds instead, the rest unchanged.
    manifest["spec"]["schedules"] = ["@every 2s"]
    _put(
        argo_cluster, datastore_key("sales/latest.csv", "test"), b"day,amount\nmon,10.5\ntue,4.5\n"
    )
    secrets = f"/api/v1/namespaces/{argo_cluster.namespace}/secrets"
    with argo_cluster.kube() as kube:
        kube.create(
            secrets,
            {"metadata": {"name": "tender-environment"}, "stringData": {"REPORT_API_KEY": "k-123"}},
        )
        cron = _create(argo_cluster, manifest)
        started = _first_started(argo_cluster, cron)
        _add_execution_secret(argo_cluster, started)
        kube.patch(argo_cluster.path("cronworkflows", cron), {"spec": {"suspend": True}})
    workflow = argo_cluster.wait_for_workflow(started)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert started.startswith("nightly-report-")
    day = workflow["metadata"]["creationTimestamp"][:10].replace("-", "")
    report = _get(argo_cluster, f"datastore/reports/{day}/report-{started}.csv")
    assert report.decode().splitlines() == ["rows,total,currency,notes", "2,15.00,EUR,"]


def _first_started(cluster: ArgoCluster, cron: str, timeout: float = 60) -> str:
    selector = f"workflows.argoproj.io/cron-workflow={cron}"
    deadline = time.monotonic() + timeout
    with cluster.kube() as kube:
        while not (items := kube.get(cluster.path("workflows"), labelSelector=selector)["items"]):
            assert time.monotonic() < deadline, f"CronWorkflow {cron} never fired"
            time.sleep(0.2)
    name: str = items[0]["metadata"]["name"]
    return name
