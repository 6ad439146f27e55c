"""Start and stop a real Argo control plane on loopback: etcd, kube-apiserver, workflow-controller.

The three servers are the binaries tools/cluster/build made; the process kubelet (kubelet.py)
stands in for nodes. One namespace holds everything: Argo's full CRDs, the controller's ConfigMap
with its S3 artifact repository, and the Secret with that repository's keys. A cluster stops only
the processes it started, and they die with the process that started them.

The controller listens on :6060 on all interfaces (hard-coded), so one cluster runs per machine:
`start_cluster` takes a lock file in the tool cache and waits (``TENDER_CLUSTER_WAIT_S``, 45
minutes by default) while another test run's cluster holds it. The lock is released when the
cluster stops, or by the kernel when the process that holds it dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import yaml

from tools.cluster.executor import new_s3_client
from tools.cluster.kube import Credentials, Kube, KubeError, write_kubeconfig

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONTROLLER_HEALTH_PORT = 6060
ARTIFACTS_SECRET = "argo-artifacts"  # noqa: S105  (the Secret's name, not a secret)

# Settings that make the controller react in tenths of a second instead of seconds (measured
# in the first trial of this harness): v4 otherwise waits 1 s after each update of a Workflow.
_CONTROLLER_ENV = {
    "LEADER_ELECTION_DISABLE": "true",
    "INFORMER_WRITE_BACK": "true",
    "DEFAULT_REQUEUE_TIME": "100ms",
    "RECENTLY_STARTED_POD_DURATION": "1s",
    "RECENTLY_DELETED_POD_DURATION": "5s",
    "TASK_RESULT_TIMEOUT_DURATION": "3s",
    "CRON_SYNC_PERIOD": "2s",
}


class ClusterError(Exception):
    """The cluster cannot start: a binary is missing, a port is taken, or a server failed."""


@dataclass(frozen=True)
class ArtifactRepository:
    """The S3 bucket Argo keeps artifacts in, as a client outside the cluster reaches it."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    workflow_controller: Path
    crds: Path

    @classmethod
    def find(cls, cache_dir: Path | None = None) -> Binaries:
        """The cached builds named after tools/cluster/versions; ClusterError names any missing."""
        versions = read_versions()
        bin_dir = (cache_dir or default_cache_dir()) / "bin"
        found = cls(
            etcd=bin_dir / f"etcd-{versions['ETCD_VERSION']}",
            kube_apiserver=bin_dir / f"kube-apiserver-{versions['KUBERNETES_VERSION']}",
            workflow_controller=bin_dir / f"workflow-controller-{versions['ARGO_VERSION']}",
            crds=bin_dir / f"argo-crds-{versions['ARGO_VERSION']}",
        )
        missing = [str(p) for p in vars(found).values() if not p.exists()]
        if missing:
            raise ClusterError(f"not built: {', '.join(missing)} (run tools/cluster/build)")
        return found


def read_versions() -> dict[str, str]:
    lines = (HERE / "versions").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def default_cache_dir() -> Path:
    if explicit := os.environ.get("TENDER_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tender"


@dataclass
class Cluster:
    """A running cluster: where to reach it, and the processes to stop."""

    directory: Path
    namespace: str
    api_url: str
    token: str
    kubeconfig: Path
    artifacts: ArtifactRepository
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    lock: IO[bytes] | None = None

    def kube(self) -> Kube:
        return Kube(Credentials.from_kubeconfig(self.kubeconfig))

    def kill_controller(self) -> None:
        """SIGKILL the workflow-controller, as a crash would (its state is in etcd)."""
        controller = self.processes.pop("controller")
        controller.kill()
        controller.wait()

    def start_controller(self, binaries: Binaries | None = None) -> None:
        """Start the workflow-controller again after kill_controller; returns once healthy."""
        _start_controller(self, (binaries or Binaries.find()).workflow_controller)

    def stop(self) -> None:
        """Stop what start_cluster started, newest first; the controller ignores SIGTERM."""
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                process.send_signal(signal.SIGKILL if name == "controller" else signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.lock is not None:
            self.lock.close()  # closing the file releases its flock
            self.lock = None


def start_cluster(
    directory: Path,
    artifacts: ArtifactRepository,
    *,
    namespace: str = "argo",
    binaries: Binaries | None = None,
) -> Cluster:
    """Start etcd, the API server, the controller and the process kubelet under directory.

    Returns once the API server is ready and the controller and kubelet run. On any failure,
    stops what it started and raises ClusterError (the servers' logs are in directory/logs).
    """
    binaries = binaries or Binaries.find()
    lock = _machine_lock()
    if not _is_port_free(CONTROLLER_HEALTH_PORT, "0.0.0.0"):  # noqa: S104  (a probe, closed at once)
        lock.close()
        raise ClusterError(
            f"port {CONTROLLER_HEALTH_PORT} is taken: the workflow-controller binds it on all "
            "interfaces, so only one test cluster can run on this machine"
        )
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    etcd_port, peer_port, api_port = _free_ports(3)
    cluster = Cluster(
        directory=directory,
        namespace=namespace,
        api_url=f"https://127.0.0.1:{api_port}",
        token=token,
        kubeconfig=directory / "kubeconfig",
        artifacts=artifacts,
        lock=lock,
    )
    try:
        _start_etcd(cluster, binaries.etcd, etcd_port, peer_port)
        _start_apiserver(cluster, binaries.kube_apiserver, etcd_port, api_port)
        # Taking in the full CRDs can keep a busy API server for tens of seconds.
        with Kube(Credentials.from_kubeconfig(cluster.kubeconfig), timeout=300) as kube:
            _set_up_namespace(kube, cluster, binaries.crds)
        _make_bucket(artifacts)
        _start_controller(cluster, binaries.workflow_controller)
        _start_kubelet(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _spawn(cluster: Cluster, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    log = (cluster.directory / "logs" / f"{name}.log").open("ab")
    cluster.processes[name] = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        preexec_fn=_die_with_parent,  # noqa: PLW1509  (only a resolved prctl call)
    )
    log.close()


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when its parent dies: a killed test run leaks nothing."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _start_etcd(cluster: Cluster, etcd: Path, port: int, peer_port: int) -> None:
    client, peer = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
    _spawn(
        cluster,
        "etcd",
        [
            str(etcd),
            f"--data-dir={cluster.directory / 'etcd'}",
            "--unsafe-no-fsync",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
        ],
    )


def _start_apiserver(cluster: Cluster, apiserver: Path, etcd_port: int, port: int) -> None:
    pki = cluster.directory / "pki"
    pki.mkdir(exist_ok=True)
    tokens = pki / "tokens.csv"
    tokens.write_text(f"{cluster.token},admin,admin,system:masters\n")
    tokens.chmod(0o600)
    # Service-account tokens (TokenRequest) are signed with this key; no controller-manager runs.
    subprocess.run(
        ["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"], check=True, capture_output=True
    )
    subprocess.run(
        ["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")],
        check=True,
        capture_output=True,
    )
    _spawn(
        cluster,
        "kube-apiserver",
        [
            str(apiserver),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={pki}",  # it signs its own serving certificate: apiserver.crt
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            # The ServiceAccount admission plugin refuses pods whose ServiceAccount does not
            # exist, and only a controller-manager would create `default`.
            "--disable-admission-plugins=ServiceAccount",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            # Creating a full CRD takes seconds, and minutes on a machine busy with builds.
            "--request-timeout=5m",
        ],
    )
    _wait_until_ready(cluster, pki / "apiserver.crt")
    write_kubeconfig(
        cluster.kubeconfig,
        cluster.api_url,
        cluster.token,
        (pki / "apiserver.crt").read_bytes(),
        cluster.namespace,
    )


def _wait_until_ready(cluster: Cluster, certificate: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {cluster.token}"}
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise ClusterError(
                    f"{name} exited with {process.returncode}: {_log_tail(cluster, name)}"
                )
        if certificate.exists():
            try:
                trust = ssl.create_default_context(cafile=str(certificate))
                response = httpx.get(
                    f"{cluster.api_url}/readyz", headers=headers, verify=trust, timeout=5
                )
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise ClusterError(
        f"kube-apiserver not ready after {timeout:.0f}s: {_log_tail(cluster, 'kube-apiserver')}"
    )


def _log_tail(cluster: Cluster, name: str) -> str:
    text = (cluster.directory / "logs" / f"{name}.log").read_text(errors="replace")
    return text[-2000:]


def _set_up_namespace(kube: Kube, cluster: Cluster, crds: Path) -> None:
    """Namespace, the full CRDs (never the minimal ones: see README), credentials, ConfigMap."""
    namespace = cluster.namespace
    kube.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    names = [_create_crd(kube, path) for path in sorted(crds.glob("argoproj.io_*.yaml"))]
    for name in names:
        _wait_established(kube, name)
    repository = cluster.artifacts
    kube.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "metadata": {"name": ARTIFACTS_SECRET},
            "stringData": {
                "accesskey": repository.access_key_id,
                "secretkey": repository.secret_access_key,
            },
        },
    )
    kube.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {
            "metadata": {"name": "workflow-controller-configmap"},
            "data": controller_config(repository),
        },
    )


def controller_config(repository: ArtifactRepository) -> dict[str, str]:
    """The data of `workflow-controller-configmap`: the artifact repository, no metrics."""
    endpoint = urlsplit(repository.endpoint_url)
    s3: dict[str, Any] = {
        "bucket": repository.bucket,
        "endpoint": endpoint.netloc,
        "insecure": endpoint.scheme == "http",
        "region": repository.region,
        "accessKeySecret": {"name": ARTIFACTS_SECRET, "key": "accesskey"},
        "secretKeySecret": {"name": ARTIFACTS_SECRET, "key": "secretkey"},
    }
    return {
        "artifactRepository": yaml.safe_dump({"s3": s3}),
        "metricsConfig": "enabled: false\n",
        "telemetryConfig": "enabled: false\n",
    }


def _create_crd(kube: Kube, path: Path, attempts: int = 5) -> str:
    """POST a CRD, not client-side apply: the full CRDs exceed its annotation size limit."""
    name = path.name.removeprefix("argoproj.io_").removesuffix(".yaml") + ".argoproj.io"
    attempt = 0
    while True:
        attempt += 1
        try:
            kube.create_from_yaml(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", path.read_bytes()
            )
            return name
        except KubeError as error:
            # An API server short of CPU answers 504 and may have stored the CRD all the same.
            if error.status == 409 and attempt > 1:
                return name
            if error.status != 504 or attempt == attempts:
                raise


def _wait_established(kube: Kube, name: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        # A CRD just created (or created again after a timeout) may have `conditions: null`.
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise ClusterError(f"CRD {name} not established after {timeout:.0f}s")


def _make_bucket(repository: ArtifactRepository) -> None:
    s3 = new_s3_client(
        repository.endpoint_url,
        repository.region,
        repository.access_key_id,
        repository.secret_access_key,
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=repository.bucket)


def _start_controller(cluster: Cluster, controller: Path) -> None:
    _spawn(
        cluster,
        "controller",
        [
            str(controller),
            f"--kubeconfig={cluster.kubeconfig}",
            f"--namespace={cluster.namespace}",
            "--namespaced",
            f"--managed-namespace={cluster.namespace}",
            "--executor-image=argoexec:not-pulled",  # no image is ever pulled here
        ],
        env=_CONTROLLER_ENV,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.processes["controller"].poll() is not None:
            raise ClusterError(f"workflow-controller exited: {_log_tail(cluster, 'controller')}")
        try:
            if httpx.get(
                f"http://127.0.0.1:{CONTROLLER_HEALTH_PORT}/healthz", timeout=2
            ).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ClusterError(f"workflow-controller not healthy: {_log_tail(cluster, 'controller')}")


def _start_kubelet(cluster: Cluster) -> None:
    _spawn(
        cluster,
        "kubelet",
        [
            sys.executable,
            "-m",
            "tools.cluster.kubelet",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--namespace={cluster.namespace}",
            f"--root={cluster.directory / 'pods'}",
        ],
    )


def _machine_lock() -> IO[bytes]:
    """The lock that one running cluster per machine holds, once free (see the docstring)."""
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    lock = (cache / "cluster.lock").open("ab")
    wait_s = float(os.environ.get("TENDER_CLUSTER_WAIT_S", "2700"))
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise ClusterError(
                    f"another test cluster has run on this machine for over {wait_s:.0f} s "
                    f"(it holds {cache / 'cluster.lock'})"
                ) from None
            if not told:
                print("waiting for another test run's cluster to stop", file=sys.stderr)
                told = True
            time.sleep(1)


def _is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def describe(cluster: Cluster) -> dict[str, Any]:
    """What a user or a test needs to reach the cluster, as JSON-ready values."""
    return {
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": cluster.namespace,
        "api_url": cluster.api_url,
        "token": cluster.token,
        "artifacts": vars(cluster.artifacts),
        "logs": str(cluster.directory / "logs"),
        "pids": {name: p.pid for name, p in cluster.processes.items()},
    }


def write_description(cluster: Cluster) -> Path:
    path = cluster.directory / "cluster.json"
    path.write_text(json.dumps({**describe(cluster), "runner_pid": os.getpid()}, indent=2))
    path.chmod(0o600)
    return path
