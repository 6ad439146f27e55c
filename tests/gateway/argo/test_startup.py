"""``tender serve`` on Argo refuses to start, saying exactly why, when the cluster cannot serve it:
the API out of reach, a permission of the Role missing, the artifact repository another bucket."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from argo_gateway import ArgoGateway, gateway_env, grant
from gateway.engines.argo.permissions import ROLE_RULES
from loopback import free_port
from tests.gateway.argo.serving import TENDER, base_env

pytestmark = pytest.mark.argo


def _serve_once(env: dict[str, str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    port = free_port()
    return subprocess.run(
        [*TENDER, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env={**base_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_verb_is_named_at_start_up(argo_gateway: ArgoGateway, tmp_path: Path) -> None:
    rules = copy.deepcopy(ROLE_RULES)
    rules[0]["verbs"].remove("watch")  # workflows
    rules = [r for r in rules if r["resources"] != ["pods/log"]]
    with argo_gateway.cluster.kube() as kube:
        kubeconfig = grant(kube, argo_gateway.cluster, "tender-too-narrow", rules, tmp_path)

    started = _serve_once(gateway_env(argo_gateway, kubeconfig), tmp_path / "data")

    assert started.returncode == 1, started.stderr
    assert "cannot run executions on Argo" in started.stderr
    assert f"namespace {argo_gateway.cluster.namespace!r}" in started.stderr
    assert "watch workflows.argoproj.io, get pods/log" in started.stderr
    assert "create workflows" not in started.stderr


def test_an_api_out_of_reach_is_named_at_start_up(
    argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    config = yaml.safe_load(argo_gateway.kubeconfig.read_text())
    closed = free_port()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed}"
    kubeconfig = tmp_path / "nowhere.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    started = _serve_once(gateway_env(argo_gateway, kubeconfig), tmp_path / "data")

    assert started.returncode == 1
    assert f"the Kubernetes API at https://127.0.0.1:{closed} cannot be reached" in started.stderr
    assert str(kubeconfig) in started.stderr


def test_an_artifact_repository_in_another_bucket_is_refused(
    argo_gateway: ArgoGateway, tmp_path: Path
) -> None:
    env = gateway_env(argo_gateway)
    env["TENDER_ARGO_ARTIFACT_REPOSITORY"] = "nope"

    started = _serve_once(env, tmp_path / "data")

    assert started.returncode == 1
    assert "TENDER_ARGO_ARTIFACT_REPOSITORY=nope" in started.stderr
    assert "has no key 'nope'" in started.stderr


def test_argo_without_s3_storage_is_refused_by_name(tmp_path: Path) -> None:
    started = _serve_once({"TENDER_ENGINE": "argo"}, tmp_path / "data")

    assert started.returncode == 2
    assert "TENDER_ENGINE=argo needs TENDER_STORAGE=s3" in started.stderr
