"""tools/cluster: a real Argo controller on loopback, its pods run by the process kubelet.

Hand-written workflows, submitted straight to the API server, reach the states real Argo gives:
a one-step workflow succeeds and archives its log, a DAG passes a parameter and an artifact
through S3, a failing step fails with Argo's message, a shutdown kills the running step, and a
CronWorkflow fires.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from argo_cluster import ArgoCluster
from tools.cluster.kube import Kube, KubeError

# The first test also waits for the session's cluster to start: about 20 s on an idle machine,
# minutes on one busy with builds.
pytestmark = [pytest.mark.timeout(600), pytest.mark.argo]


@pytest.fixture(autouse=True)
def _clean(argo_cluster: ArgoCluster) -> Iterator[None]:
    yield
    argo_cluster.delete_all()


def _submit(cluster: ArgoCluster, text: str) -> str:
    with cluster.kube() as kube:
        created = kube.create(cluster.path("workflows"), yaml.safe_load(text))
    name: str = created["metadata"]["name"]
    return name


def _nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in workflow["status"]["nodes"].values()}


def _object(cluster: ArgoCluster, key: str) -> bytes:
    body: bytes = cluster.s3.client().get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
    return body


HELLO = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-}
spec:
  entrypoint: main
  archiveLogs: true
  templates:
  - name: main
    script:
      image: python:3.12-slim
      command: [python]
      source: |
        import sys
        print("hello from the host's Python", file=sys.stderr)
"""


def test_a_one_step_workflow_succeeds_and_archives_its_log(argo_cluster: ArgoCluster) -> None:
    workflow = argo_cluster.wait_for_workflow(_submit(argo_cluster, HELLO))
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    [node] = workflow["status"]["nodes"].values()
    assert node["outputs"]["exitCode"] == "0"
    [log] = node["outputs"]["artifacts"]
    assert log["name"] == "main-logs"
    assert _object(argo_cluster, log["s3"]["key"]) == b"hello from the host's Python\n"


DAG = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: dag-}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: word, value: tender}]
  templates:
  - name: main
    outputs:
      parameters: [{name: summary, valueFrom: {parameter: "{{tasks.consume.outputs.result}}"}}]
    dag:
      tasks:
      - name: produce
        template: produce
        arguments: {parameters: [{name: word, value: "{{workflow.parameters.word}}"}]}
      - name: consume
        depends: produce
        template: consume
        arguments:
          parameters: [{name: length, value: "{{tasks.produce.outputs.parameters.length}}"}]
          artifacts: [{name: text, from: "{{tasks.produce.outputs.artifacts.text}}"}]
  - name: produce
    inputs: {parameters: [{name: word}]}
    outputs:
      parameters: [{name: length, valueFrom: {path: /tmp/out/length}}]
      artifacts: [{name: text, path: /tmp/out/text}]
    script:
      image: python:3.12-slim
      command: [python]
      source: |
        import os
        os.makedirs("/tmp/out", exist_ok=True)
        open("/tmp/out/text", "w").write("{{inputs.parameters.word}}" * 3)
        open("/tmp/out/length", "w").write(str(len("{{inputs.parameters.word}}")))
  - name: consume
    inputs:
      parameters: [{name: length}]
      artifacts: [{name: text, path: /data/text}]
    script:
      image: python:3.12-slim
      command: [python]
      source: |
        text = open("/data/text").read()
        print(f"{text} has {len(text)} letters, {{inputs.parameters.length}} per word")
"""


def test_a_dag_passes_a_parameter_and_an_artifact_through_s3(argo_cluster: ArgoCluster) -> None:
    name = _submit(argo_cluster, DAG)
    workflow = argo_cluster.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    nodes = _nodes(workflow)
    assert nodes["produce"]["outputs"]["parameters"][0]["value"] == "6"
    [artifact] = nodes["produce"]["outputs"]["artifacts"]
    key = artifact["s3"]["key"]
    assert key.startswith(f"{name}/")  # the repository's key format: <workflow>/<pod>/
    assert key.endswith("/text.tgz")
    # The script's stdout is its `result`, captured because the DAG's output reads it.
    summary = "tendertendertender has 18 letters, 6 per word"
    assert nodes["consume"]["outputs"]["result"] == summary
    assert nodes[name]["outputs"]["parameters"] == [{"name": "summary", "value": summary}]


FAILING = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: fail-}
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: python:3.12-slim
      command: [python, -c, "import sys; sys.exit(1)"]
"""


def test_a_failing_step_fails_the_workflow_with_argos_message(argo_cluster: ArgoCluster) -> None:
    workflow = argo_cluster.wait_for_workflow(_submit(argo_cluster, FAILING))
    assert workflow["status"]["phase"] == "Failed"
    assert workflow["status"]["message"] == "main: Error (exit code 1)"
    [node] = workflow["status"]["nodes"].values()
    assert node["outputs"]["exitCode"] == "1"


SLEEPING = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sleepy-}
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: python:3.12-slim
      command: [python, -c, SCRIPT, PID_FILE]
"""


SLEEP = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"


def test_a_shutdown_kills_the_running_step(argo_cluster: ArgoCluster, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"  # not a declared path: the kubelet leaves it where it is
    manifest = SLEEPING.replace("SCRIPT", f'"{SLEEP}"').replace("PID_FILE", str(pid_file))
    name = _submit(argo_cluster, manifest)
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    with argo_cluster.kube() as kube:
        kube.patch(argo_cluster.path("workflows", name), {"spec": {"shutdown": "Terminate"}})
    workflow = argo_cluster.wait_for_workflow(name, timeout=30)
    assert workflow["status"]["phase"] == "Failed"
    assert workflow["status"]["message"] == "Stopped with strategy 'Terminate'"
    [node] = workflow["status"]["nodes"].values()
    assert node["phase"] == "Failed"
    # Argo's own race: the controller marks the node when it sees the pod still running,
    # else the pod's end (SIGTERM: 143, as in a container) names it.
    messages = {"workflow shutdown with strategy:  Terminate", "main: Error (exit code 143)"}
    assert node["message"] in messages
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


CRON = """
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: every-few-seconds}
spec:
  schedules: ["@every 2s"]
  concurrencyPolicy: Forbid
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      container:
        image: python:3.12-slim
        command: [python, -c, "print('tick')"]
"""


def test_a_cron_workflow_fires(argo_cluster: ArgoCluster) -> None:
    with argo_cluster.kube() as kube:
        kube.create(argo_cluster.path("cronworkflows"), yaml.safe_load(CRON))
        selector = "workflows.argoproj.io/cron-workflow=every-few-seconds"
        deadline = time.monotonic() + 60
        while not (
            started := kube.get(argo_cluster.path("workflows"), labelSelector=selector)["items"]
        ):
            assert time.monotonic() < deadline, "the CronWorkflow never fired"
            time.sleep(0.2)
        kube.patch(
            argo_cluster.path("cronworkflows", "every-few-seconds"), {"spec": {"suspend": True}}
        )
    workflow = argo_cluster.wait_for_workflow(started[0]["metadata"]["name"])
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]


def _running_pod(cluster: ArgoCluster, workflow: str, timeout: float = 30) -> str:
    selector = f"workflows.argoproj.io/workflow={workflow}"
    deadline = time.monotonic() + timeout
    with cluster.kube() as kube:
        while True:
            pods = kube.get(f"/api/v1/namespaces/{cluster.namespace}/pods", labelSelector=selector)
            running = [p for p in pods["items"] if p.get("status", {}).get("phase") == "Running"]
            if running:
                name: str = running[0]["metadata"]["name"]
                return name
            assert time.monotonic() < deadline, f"no pod of {workflow} runs"
            time.sleep(0.05)


TALKING = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: talky-}
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: python:3.12-slim
      command: [python, -u, -c, "import time\\nfor i in range(4): print('line', i); time.sleep(.3)"]
"""


def test_pods_log_follows_a_running_steps_output(argo_cluster: ArgoCluster) -> None:
    name = _submit(argo_cluster, TALKING)
    pod = _running_pod(argo_cluster, name)
    path = f"/api/v1/namespaces/{argo_cluster.namespace}/pods/{pod}/log"
    with _http(argo_cluster, argo_cluster.token) as http:
        # The API server asks the pod's node (the kubelet) for the log, and streams it.
        with http.stream("GET", path, params={"container": "main", "follow": "true"}) as log:
            lines = list(log.iter_lines())
        assert lines == ["line 0", "line 1", "line 2", "line 3"]
        tail = http.get(path, params={"container": "main", "tailLines": "1"})
    assert tail.text == "line 3\n"
    assert argo_cluster.wait_for_workflow(name)["status"]["phase"] == "Succeeded"


def test_deleting_a_running_pod_kills_its_process(
    argo_cluster: ArgoCluster, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    manifest = SLEEPING.replace("SCRIPT", f'"{SLEEP}"').replace("PID_FILE", str(pid_file))
    name = _submit(argo_cluster, manifest)
    pod = _running_pod(argo_cluster, name)
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    # A pod that vanishes within RECENTLY_STARTED_POD_DURATION (1 s here) of its start is
    # created again by the controller, which takes it for its informer lagging.
    time.sleep(2)
    with argo_cluster.kube() as kube:
        kube.delete(f"/api/v1/namespaces/{argo_cluster.namespace}/pods/{pod}")
    workflow = argo_cluster.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Error"
    [node] = workflow["status"]["nodes"].values()
    assert node["message"] == "pod deleted"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_rbac_holds_for_a_service_account_token_from_token_request(
    argo_cluster: ArgoCluster,
) -> None:
    """No controller-manager runs, yet TokenRequest signs tokens that RBAC then judges."""
    namespace = argo_cluster.namespace
    core = f"/api/v1/namespaces/{namespace}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    with argo_cluster.kube() as kube, contextlib.ExitStack() as stack:
        for path in (
            f"{rbac}/rolebindings/reader",
            f"{rbac}/roles/reader",
            f"{core}/serviceaccounts/reader",
        ):
            stack.callback(_delete_if_there, kube, path)
        kube.create(f"{core}/serviceaccounts", {"metadata": {"name": "reader"}})
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
        token = kube.create(f"{core}/serviceaccounts/reader/token", request)["status"]["token"]
        as_reader = stack.enter_context(_http(argo_cluster, token))
        assert as_reader.get(argo_cluster.path("workflows")).status_code == 403
        kube.create(
            f"{rbac}/roles",
            {
                "metadata": {"name": "reader"},
                "rules": [
                    {
                        "apiGroups": ["argoproj.io"],
                        "resources": ["workflows"],
                        "verbs": ["list"],
                    }
                ],
            },
        )
        kube.create(
            f"{rbac}/rolebindings",
            {
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        )
        deadline = time.monotonic() + 10  # the authorizer's cache takes a moment
        while (status := as_reader.get(argo_cluster.path("workflows")).status_code) != 200:
            assert time.monotonic() < deadline, f"still {status} with the Role bound"
            time.sleep(0.1)
        assert as_reader.get(argo_cluster.path("cronworkflows")).status_code == 403


def _delete_if_there(kube: Kube, path: str) -> None:
    with contextlib.suppress(KubeError):
        kube.delete(path)


def _http(cluster: ArgoCluster, token: str) -> httpx.Client:
    verify = ssl.create_default_context(cafile=str(cluster.ca_file))
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=cluster.api_url, headers=headers, verify=verify)


CONFIGURED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: configured-}
spec:
  entrypoint: main
  archiveLogs: true
  templates:
  - name: main
    container:
      image: python:3.12-slim
      command: [python, -c, "import os; print(os.environ['GREETING'], os.environ['WHO'])"]
      env:
      - {name: GREETING, valueFrom: {configMapKeyRef: {name: words, key: greeting}}}
      - {name: WHO, valueFrom: {secretKeyRef: {name: late-secret, key: who}}}
"""


def test_a_step_waits_for_the_secret_it_reads_as_a_kubelet_does(
    argo_cluster: ArgoCluster,
) -> None:
    core = f"/api/v1/namespaces/{argo_cluster.namespace}"
    with argo_cluster.kube() as kube, contextlib.ExitStack() as stack:
        for path in (f"{core}/configmaps/words", f"{core}/secrets/late-secret"):
            stack.callback(_delete_if_there, kube, path)
        kube.create(
            f"{core}/configmaps", {"metadata": {"name": "words"}, "data": {"greeting": "hi"}}
        )
        name = _submit(argo_cluster, CONFIGURED)
        selector = f"workflows.argoproj.io/workflow={name}"
        deadline = time.monotonic() + 30
        while "CreateContainerConfigError" not in str(
            kube.get(f"{core}/pods", labelSelector=selector)
        ):
            assert time.monotonic() < deadline, "the pod never waited for its Secret"
            time.sleep(0.1)
        kube.create(
            f"{core}/secrets", {"metadata": {"name": "late-secret"}, "stringData": {"who": "you"}}
        )
        workflow = argo_cluster.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    [node] = workflow["status"]["nodes"].values()
    [log] = node["outputs"]["artifacts"]
    assert _object(argo_cluster, log["s3"]["key"]) == b"hi you\n"
