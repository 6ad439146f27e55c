"""Argo benchmark: tender on the test cluster (tools/cluster), beside the cluster alone.

Run: ``python bench/argo_bench.py [--runs N] [--running N] [--window S]``; it starts its own S3
server and cluster (one cluster per machine: the controller binds :6060). In one run:
- the floor: a one-step no-op Workflow written by hand (``python -c pass``), from POST to the
  watch reporting it Succeeded: the controller and the process kubelet alone;
- ``run_pipeline`` of a no-op pipeline through the unmodified craft-ai-sdk, on a gateway with
  TENDER_ENGINE=argo (the compiled Workflow, code from S3, the tracker's watch, the long-poll);
- where that time goes: the Workflow tender submitted, submitted again by hand and timed as the
  floor is, so that (it - floor) is what the Workflow's content costs (code archive from S3,
  the runner, the output parameter) and (run_pipeline - it) what the gateway and the SDK add;
- the gateway's calls to the Kubernetes API per minute, while no execution runs and while
  ``--running`` executions run (counted by its own client, over ``--window`` seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

# The repository first: the test helpers' folder also holds a `compiler` (tests/compiler).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import median_ms
from noop_pipeline import write_code

from argo_cluster import ArgoCluster
from argo_gateway import SERVICE_ACCOUNT, ArgoGateway, gateway_env, grant, put_repository
from compiler.execution_secret import SDK_ENVIRONMENT, execution_secret_name
from gateway.app import create_app
from gateway.engines.argo.permissions import ROLE_RULES
from gateway.settings import Settings
from loopback import free_port
from s3_server import start_versitygw
from tools.cluster.cluster import ArtifactRepository, start_cluster

NOOP = ["python", "-c", "pass"]
GATED = """
import os
import time


def gated(release):
    while not os.path.exists(release):
        time.sleep(0.5)
    return {"y": 1}
"""


@contextmanager
def cluster_for_tender(root: Path) -> Iterator[ArgoGateway]:
    s3, stop_s3 = start_versitygw(root / "s3")
    try:
        bucket = s3.create_bucket()
        repository = ArtifactRepository(
            s3.endpoint_url, bucket, s3.access_key_id, s3.secret_access_key, s3.region
        )
        cluster = start_cluster(root / "cluster", repository)
        try:
            argo_cluster = ArgoCluster(
                kubeconfig=cluster.kubeconfig,
                namespace=cluster.namespace,
                api_url=cluster.api_url,
                token=cluster.token,
                s3=s3,
                bucket=bucket,
                logs=root / "cluster" / "logs",
                ca_file=root / "cluster" / "pki" / "apiserver.crt",
                running=cluster,
            )
            with argo_cluster.kube() as kube:
                put_repository(kube, argo_cluster)
                kubeconfig = grant(kube, argo_cluster, SERVICE_ACCOUNT, ROLE_RULES, root)
            yield ArgoGateway(argo_cluster, kubeconfig)
        finally:
            cluster.stop()
    finally:
        stop_s3()


def floor_once(argo: ArgoGateway, *, output: bool = False) -> None:
    """A hand-written one-step Workflow, from POST to Succeeded seen through a watch; with
    ``output``, its step writes a file read back as an output parameter, as tender's steps do."""
    template: dict[str, Any] = {
        "name": "main",
        "container": {"image": "python", "command": ["python", "-c", "pass"]},
    }
    if output:
        write = "open('/tmp/y', 'w').write('1')"
        template["container"]["command"] = ["python", "-c", write]
        template["outputs"] = {"parameters": [{"name": "y", "valueFrom": {"path": "/tmp/y"}}]}
    submitted_once(
        argo,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": "floor-"},
            "spec": {"entrypoint": "main", "templates": [template]},
        },
    )


def submitted_once(argo: ArgoGateway, manifest: dict[str, Any]) -> None:
    """``manifest`` from POST to Succeeded, seen through a watch."""
    cluster = argo.cluster
    with cluster.kube() as kube:
        created = kube.create(cluster.path("workflows"), manifest)
        name = created["metadata"]["name"]
        version = created["metadata"]["resourceVersion"]
        for event in kube.watch(cluster.path("workflows"), version):
            item = event["object"]
            if item["metadata"]["name"] == name and item.get("status", {}).get("phase") in (
                "Succeeded",
                "Failed",
                "Error",
            ):
                assert item["status"]["phase"] == "Succeeded", item["status"]
                return


def compiled_by_hand(argo: ArgoGateway, pipeline: str, times: int) -> Callable[[], None]:
    """The Workflow tender submitted for a run of ``pipeline``, submitted again ``times`` times
    without the gateway, timed as the floor is: the same spec (code from S3, the runner,
    outputs), no tender label (the gateway's watch ignores it), each one's Secret made
    beforehand, out of the time."""
    cluster = argo.cluster
    names = [f"by-hand-{i}" for i in range(times)]
    with cluster.kube() as kube:
        listed = kube.get(cluster.path("workflows"), labelSelector=f"tender.io/pipeline={pipeline}")
        spec = listed["items"][0]["spec"]
        for name in names:
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": execution_secret_name(name)},
                "stringData": dict.fromkeys(SDK_ENVIRONMENT.values(), "unused"),
            }
            kube.create(f"/api/v1/namespaces/{cluster.namespace}/secrets", secret)
    left = iter(names)

    def once() -> None:
        manifest = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": next(left)},
            "spec": spec,
        }
        submitted_once(argo, manifest)

    return once


@contextmanager
def gateway_in_process(argo: ArgoGateway, data_dir: Path) -> Iterator[tuple[str, Any]]:
    """``tender serve`` in this process, so that its API client's count can be read."""
    os.environ.update(gateway_env(argo))
    os.environ["TENDER_DATA_DIR"] = str(data_dir)
    settings = Settings()
    from gateway.admin import create_sdk_token

    token = create_sdk_token(settings, "bench")
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    try:
        yield url, (token, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def api_calls(app: Any) -> int:
    calls: int = app.state.services.engine.client.calls
    return calls


def calls_per_minute(app: Any, window_s: float) -> float:
    before = api_calls(app)
    time.sleep(window_s)
    return (api_calls(app) - before) * 60 / window_s


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--window", type=float, default=60.0)
    arguments = parser.parse_args()
    os.environ["SDK_VERBOSE_LOG"] = "false"
    from craft_ai_sdk import INPUT_OUTPUT_TYPES, CraftAiSdk, Input, Output

    root = Path(tempfile.mkdtemp(prefix="argo-bench-"))
    try:
        with cluster_for_tender(root) as argo:
            floor = median_ms(lambda: floor_once(argo), arguments.runs)
            with_output = median_ms(lambda: floor_once(argo, output=True), arguments.runs)
            with gateway_in_process(argo, root / "data") as (url, (token, app)):
                sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
                code = write_code(root / "code")
                (code / "src" / "gated.py").write_text(GATED)
                number = INPUT_OUTPUT_TYPES.NUMBER
                sdk.create_pipeline(
                    "noop",
                    function_path="src/noop.py",
                    function_name="noop",
                    container_config={"local_folder": str(code)},
                    outputs=[Output("y", number)],
                )
                run = median_ms(lambda: sdk.run_pipeline("noop"), arguments.runs)
                by_hand = median_ms(
                    compiled_by_hand(argo, "noop", arguments.runs + 1), arguments.runs
                )
                idle = calls_per_minute(app, arguments.window)
                sdk.create_pipeline(
                    "gated",
                    function_path="src/gated.py",
                    function_name="gated",
                    container_config={"local_folder": str(code)},
                    inputs=[Input("release", INPUT_OUTPUT_TYPES.STRING)],
                    outputs=[Output("y", number)],
                )
                release = root / "release"
                for _ in range(arguments.running):
                    sdk.run_pipeline(
                        "gated", inputs={"release": str(release)}, wait_for_completion=False
                    )
                running = _wait_running(argo, arguments.running)
                busy = calls_per_minute(app, arguments.window)
                still = _count_running(argo)
                release.touch()
                while any(e["end_date"] is None for e in sdk.list_pipeline_executions("gated")):
                    time.sleep(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"Run: {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, medians of {arguments.runs}."
    )
    print()
    print("| what | tender | floor | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| submit to Succeeded, one no-op step: `run_pipeline` (SDK) vs a hand-written Workflow "
        f"| {run:.0f} ms | {floor:.0f} ms | {run / floor:.2f}x |"
    )
    print(
        f"| where it goes: a hand-written Workflow with an output parameter vs without "
        f"| {with_output:.0f} ms | {floor:.0f} ms | {with_output / floor:.2f}x |"
    )
    print(
        f"| where it goes: tender's Workflow submitted by hand vs a hand-written one "
        f"| {by_hand:.0f} ms | {floor:.0f} ms | {by_hand / floor:.2f}x |"
    )
    print(
        f"| where it goes: `run_pipeline` vs tender's Workflow submitted by hand "
        f"| {run:.0f} ms | {by_hand:.0f} ms | {run / by_hand:.2f}x |"
    )
    print()
    print("| gateway's Kubernetes API calls per minute | calls/min |")
    print("|---|---:|")
    print(f"| no execution running | {idle:.1f} |")
    print(f"| {running} executions running (still {still} at the end) | {busy:.1f} |")


def _count_running(argo: ArgoGateway) -> int:
    cluster = argo.cluster
    with cluster.kube() as kube:
        listed = kube.get(cluster.path("workflows"), labelSelector="tender.io/pipeline=gated")
    return sum(1 for w in listed["items"] if w.get("status", {}).get("phase") == "Running")


def _wait_running(argo: ArgoGateway, count: int, timeout_s: float = 600) -> int:
    deadline = time.monotonic() + timeout_s
    while (running := _count_running(argo)) < count and time.monotonic() < deadline:
        time.sleep(1)
    return running


if __name__ == "__main__":
    main()
