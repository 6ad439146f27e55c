"""A container of the chart's Deployment, run as a host process: no kubelet runs the gateway's
pod here, so the tests run its containers themselves, with what the pod would have.

What is the pod's, exactly: the container's `args` after the image's ENTRYPOINT (`tender`), its
`env` and `envFrom` resolved from the objects the API server holds (the chart's ConfigMap, the
Secrets), over the image's ENV (read from the Dockerfile). What stands in for what only a node
gives: the volumes are host folders (every value naming a mount path is moved with it), the
pod's service account is a kubeconfig holding a token of that ServiceAccount from the
TokenRequest API (the same identity, minus the file mount), and the pod's own network is
127.0.0.1 on a free port (TENDER_HOST, TENDER_PORT).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tools.cluster.kube import Credentials, Kube, write_kubeconfig

__all__ = ["HostPod", "image_config", "service_account_kubeconfig"]

REPO = Path(__file__).resolve().parents[2]
# The image's ENTRYPOINT ["tender"]: the console script, as this checkout's Python runs it.
TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]
_STARTUP_S = 120.0


def image_config() -> tuple[dict[str, str], str]:
    """The ENV (but PATH: the host's Python stands in for the image's virtualenv) and the
    WORKDIR of the Dockerfile's final stage."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    final = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    workdir = "/"
    for line in final.splitlines():
        keyword, _, rest = line.partition(" ")
        if keyword == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", rest))
        elif keyword == "WORKDIR":
            workdir = rest.strip()
        elif keyword == "ENTRYPOINT":
            assert json.loads(rest) == ["tender"], "the tests run the console script"
    env.pop("PATH", None)
    return env, workdir


def service_account_kubeconfig(
    kube: Kube, admin: Credentials, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig whose user is ``account``: a token from the TokenRequest API."""
    requested = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    write_kubeconfig(path, admin.server, requested["status"]["token"], admin.ca_pem, namespace)
    return path


@dataclass
class HostPod:
    """One replica of the Deployment ``deployment`` (as the API server holds it)."""

    deployment: dict[str, Any]
    kube: Kube
    kubeconfig: Path  # the pod's ServiceAccount
    root: Path  # its volumes live here
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "gateway.log"

    def container(self, name: str) -> dict[str, Any]:
        spec = self.deployment["spec"]["template"]["spec"]
        [found] = [
            c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name
        ]
        return found

    def env(self, name: str) -> dict[str, str]:
        """The container's environment, on this host."""
        container = self.container(name)
        namespace = self.deployment["metadata"]["namespace"]
        env = image_config()[0]
        for source in container.get("envFrom", []):
            env.update(self._source(namespace, source))
        for variable in container.get("env", []):
            env[variable["name"]] = self._value(namespace, variable)
        env = {k: self._on_host(v) for k, v in env.items()}
        assert "KUBECONFIG" not in env
        assert "TENDER_PORT" in env
        host = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        return (
            host
            | env
            | {
                "KUBECONFIG": str(self.kubeconfig),
                "TENDER_HOST": "127.0.0.1",
                "TENDER_PORT": str(self.port),
            }
        )

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The container ``name`` to its end; ``args`` replace its own (as `kubectl exec`)."""
        return subprocess.run(
            [*TENDER, *(args or self.container(name)["args"])],
            env=self.env(name),
            cwd=self._on_host(image_config()[1]),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def start(self) -> None:
        """The init containers, then the gateway, up when its startup probe would pass."""
        spec = self.deployment["spec"]["template"]["spec"]
        for init in spec.get("initContainers", []):
            done = self.run(init["name"])
            assert done.returncode == 0, f"init container {init['name']}:\n{done.stderr}"
        gateway = self.container("gateway")
        probe = gateway["startupProbe"]["httpGet"]["path"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*TENDER, *gateway["args"]],
                env=self.env("gateway"),
                cwd=self._on_host(image_config()[1]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + _STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the gateway exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.base_url + probe, timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the gateway did not pass its startup probe in {_STARTUP_S} s:\n{self.logs()}")

    def stop(self) -> None:
        """SIGTERM, as the kubelet stops a container."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _mounts(self) -> dict[str, Path]:
        mounts = {}
        for mount in self.container("gateway").get("volumeMounts", []):
            folder = self.root / "volumes" / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = folder
        return mounts

    def _on_host(self, value: str) -> str:
        for path, folder in self._mounts().items():
            if value == path or value.startswith(path + "/"):
                return str(folder) + value[len(path) :]
        return value

    def _source(self, namespace: str, source: dict[str, Any]) -> dict[str, str]:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            data = self.kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")["data"]
            return {prefix + k: v for k, v in data.items()}
        name = source["secretRef"]["name"]
        data = self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")["data"]
        return {prefix + k: base64.b64decode(v).decode() for k, v in data.items()}

    def _value(self, namespace: str, variable: dict[str, Any]) -> str:
        if "value" in variable:
            return str(variable["value"])
        reference = variable["valueFrom"]
        if "secretKeyRef" in reference:
            ref = reference["secretKeyRef"]
            secret = self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
            return base64.b64decode(secret["data"][ref["key"]]).decode()
        if "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            data = self.kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{ref['name']}")
            return str(data["data"][ref["key"]])
        raise AssertionError(f"a kind of env the tests do not resolve: {variable}")
