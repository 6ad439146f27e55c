"""A real ``tender serve`` on a free loopback port, and clients for it.

The gateway runs as users run it: a subprocess started with the ``tender`` CLI, on a fresh data
dir, with an SDK token from ``tender token create``. It runs on SQLite, and on PostgreSQL when
``TENDER_TEST_DATABASE_URL`` is set. That database is shared with other tests and other runs, so
every pipeline gets a random suffix and is deleted after its test. Each database runs with both
storages: the local folder, and a bucket of the real S3 server (``tests/s3_server.py``) under a
key prefix (``TENDER_STORAGE=s3``). The same tests run once more on Argo (``TENDER_ENGINE=argo``,
the ``argo`` parameter): the gateway then drives the test cluster (``argo_cluster``) with the
narrow identity of ``argo_gateway``, on SQLite and the cluster's artifact repository as storage.

The server is scoped to this package rather than the session: the engine tests empty the engine's
tables of that same PostgreSQL database, which must not happen under a running gateway.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from sqlalchemy import delete, select

from argo_gateway import KEY_PREFIX, ArgoGateway, gateway_env
from gateway.store import Database
from gateway.store.tables import ApiTokenRow, WorkflowRow
from loopback import free_port, wait_until_serving
from s3_server import S3Server

TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]
# Short holds keep the long-poll tests quick; the SDK loops on 307 and on creation_pending
# whatever the hold is (craft-api.md section 7).
LONG_POLL_S = 1.0
# Small pages, so that listing the data store really goes through continuation tokens.
DATASTORE_PAGE_SIZE = 2
# Frequent samples, so that a short step shows in the resource metrics.
RESOURCE_SAMPLE_S = 0.25


S3_PREFIX = KEY_PREFIX  # the same on Argo, where the bucket is the artifact repository


class Gateway(NamedTuple):
    base_url: str
    token: str
    database: str  # "sqlite" or "postgres"
    data_dir: Path
    storage: str = "local"  # or "s3"
    s3: S3Server | None = None
    bucket: str = ""
    engine: str = "local"  # or "argo" (with storage "s3")
    argo: ArgoGateway | None = None

    def workflow_manifests(self, names: list[str]) -> list[dict[str, Any]]:
        """The Workflows the engine holds for these executions, without their status: from the
        embedded engine's tables, or from the cluster."""
        if self.argo is None:
            db = Database(self.database_url)
            try:
                with db.transaction() as session:
                    query = select(WorkflowRow.manifest).where(WorkflowRow.name.in_(names))
                    return list(session.scalars(query))
            finally:
                db.dispose()
        cluster = self.argo.cluster
        with cluster.kube() as kube:
            found = [kube.get(cluster.path("workflows", name)) for name in names]
        return [{k: v for k, v in w.items() if k != "status"} for w in found]

    def stored_keys(self) -> set[str]:
        """Every object the gateway stored, by key, read straight from the storage."""
        if self.s3 is None:
            root = self.data_dir / "storage"
            return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        pages = self.s3.client().get_paginator("list_objects_v2")
        return {
            item["Key"].removeprefix(S3_PREFIX)
            for page in pages.paginate(Bucket=self.bucket, Prefix=S3_PREFIX)
            for item in page.get("Contents", [])
        }

    def is_storage_url(self, url: str) -> bool:
        """Whether ``url`` points at the storage itself (the bucket), not the gateway."""
        if self.s3 is None:
            return url.startswith(self.base_url + "/")
        return url.startswith(self.s3.endpoint_url + "/")

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def database_url(self) -> str:
        """The store the gateway runs on, for tests that read it as an operator could."""
        if self.database == "postgres":
            return os.environ["TENDER_TEST_DATABASE_URL"]
        return f"sqlite:///{self.data_dir / 'tender.db'}"

    @property
    def log(self) -> Path:
        """Where the gateway's stderr goes (its log)."""
        return self.data_dir.parent / "serve.stderr"


def _server_params() -> list[Any]:
    """(database URL, storage, engine): each database with each storage, and Argo."""
    url = os.environ.get("TENDER_TEST_DATABASE_URL")
    skip = pytest.mark.skip(reason="TENDER_TEST_DATABASE_URL is not set")
    params = []
    for storage in ("local", "s3"):
        marks = [pytest.mark.s3] if storage == "s3" else []
        params += [
            pytest.param((None, storage, "local"), id=f"sqlite-{storage}", marks=marks),
            pytest.param(
                (url, storage, "local"),
                id=f"postgres-{storage}",
                marks=[*marks, pytest.mark.postgres, *([] if url else [skip])],
            ),
        ]
    return [*params, pytest.param((None, "s3", "argo"), id="argo", marks=[pytest.mark.argo])]


def _server_env(database_url: str | None) -> dict[str, str]:
    """The test's environment without its own TENDER_* settings, which would leak in."""
    leaking = ("TENDER_", "AWS_", "KUBECONFIG")
    env = {k: v for k, v in os.environ.items() if not k.startswith(leaking)}
    env["TENDER_LONG_POLL_S"] = str(LONG_POLL_S)
    env["TENDER_DATASTORE_PAGE_SIZE"] = str(DATASTORE_PAGE_SIZE)
    env["TENDER_RESOURCE_SAMPLE_S"] = str(RESOURCE_SAMPLE_S)
    if database_url:
        env["TENDER_DATABASE_URL"] = database_url
    return env


@pytest.fixture(scope="package", params=_server_params())
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A running gateway and an SDK token for it; fails if the server logged a traceback."""
    database_url: str | None = request.param[0]
    storage: str = request.param[1]
    engine: str = request.param[2]
    database = "postgres" if database_url else "sqlite"
    root = tmp_path_factory.mktemp(f"gateway-{database}-{storage}-{engine}")
    data_dir = root / "data"
    env = _server_env(database_url)
    s3: S3Server | None = None
    bucket = ""
    argo: ArgoGateway | None = None
    if engine == "argo":
        argo = request.getfixturevalue("argo_gateway")
        s3, bucket = argo.cluster.s3, argo.cluster.bucket
        env.update(gateway_env(argo))
    elif storage == "s3":
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.create_bucket()
        env.update(s3.settings_env(bucket, prefix=S3_PREFIX))
    token_name = f"acceptance-{secrets.token_hex(4)}"
    created = subprocess.run(
        [*TENDER, "token", "create", "--data-dir", str(data_dir), "--name", token_name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token, created.stderr
    assert created.stdout == f"{token}\n", "token create prints the token and nothing else"

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    stderr = root / "serve.stderr"
    with stderr.open("wb") as err_file:
        process = subprocess.Popen(
            [*TENDER, "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
    try:
        wait_until_serving(process, base_url, stderr)
        yield Gateway(base_url, token, database, data_dir, storage, s3, bucket, engine, argo)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if database_url:
            _forget_token(database_url, token_name)
    log = stderr.read_text(errors="replace")
    assert "Traceback" not in log, f"tender serve wrote a traceback to stderr:\n{log}"


def _forget_token(database_url: str, token_name: str) -> None:
    db = Database(database_url)
    try:
        with db.transaction() as session:
            session.execute(delete(ApiTokenRow).where(ApiTokenRow.name == token_name))
    finally:
        db.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realtime: waits for the wall clock (a minute boundary); -m 'not realtime'"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Low-latency deployments are not built for Argo: there they are refused (400, checked in
    tests/gateway/argo), so their tests do not run on the ``argo`` gateway."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        server = callspec.params.get("gateway") if callspec is not None else None
        on_argo = isinstance(server, tuple) and server[-1] == "argo"
        if on_argo and ("low_latency" in item.name or item.path.name == "test_low_latency.py"):
            item.add_marker(pytest.mark.skip(reason="low-latency deployments are local only"))
        if on_argo and item.name.startswith("test_resource_metrics_measure"):
            # Not sampled on Argo (501, README "On an Argo cluster"): the pods are the cluster's.
            item.add_marker(pytest.mark.skip(reason="resource metrics are local only"))


@pytest.fixture
def access_token(gateway: Gateway) -> str:
    answer = requests.post(
        f"{gateway.api}/auth/refresh", json={"refresh_token": gateway.token}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


@pytest.fixture
def http(access_token: str) -> Iterator[requests.Session]:
    """A plain ``requests`` session that sends the access token, as the SDK's session does."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {access_token}"
        yield session


@pytest.fixture
def sdk(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The unmodified craft-ai-sdk client, pointed at the gateway for both of its URLs."""
    from craft_ai_sdk import CraftAiSdk

    monkeypatch.setenv("SDK_VERBOSE_LOG", "false")
    return CraftAiSdk(
        sdk_token=gateway.token, environment_url=gateway.base_url, control_url=gateway.base_url
    )


@pytest.fixture
def pipeline_name(gateway: Gateway) -> Iterator[Callable[[str], str]]:
    """``pipeline_name("echo")`` gives ``echo-<random>``; each such pipeline is deleted after."""
    names: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        names.append(name)
        return name

    yield make
    with requests.Session() as session:
        answer = session.post(
            f"{gateway.api}/auth/refresh", json={"refresh_token": gateway.token}, timeout=30
        )
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        for name in names:
            gone = session.delete(
                f"{gateway.api}/pipelines/{name}",
                params={"force_deployments_deletion": "true"},
                timeout=60,
            )
            assert gone.status_code in (200, 404), gone.text
