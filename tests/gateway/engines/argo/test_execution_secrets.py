"""Each execution's Secret on a cluster (``ExecutionSecretWriter``): made once however often it is
asked for, made under a burst whatever the size of the connection pool, and tried again while
the API is busy. The burst runs on the test cluster's real API server; the answers a busy API
gives (429, 503) come from a stand-in on loopback, which a healthy API server never gives on
demand."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from argo_gateway import ArgoGateway
from gateway.engines.argo import KubeClient, load_credentials
from gateway.engines.argo.client import KubeApiError
from gateway.engines.argo.credentials import KubeCredentials
from gateway.engines.argo.secrets import EXECUTION_LABEL, ExecutionSecretWriter
from gateway.engines.base import Manifest


def _workflow(name: str) -> Manifest:
    # No Workflow owns these: the test cluster runs no garbage collector, and the test deletes
    # them itself.
    return {"metadata": {"name": name, "uid": str(uuid.uuid4())}}


def _writer(client: KubeClient, namespace: str, **timing: float) -> ExecutionSecretWriter:
    return ExecutionSecretWriter(
        client, namespace, lambda name: f"{name}-secret", lambda name: {"for": name}, **timing
    )


@pytest.mark.argo
def test_a_burst_of_secrets_through_four_connections_all_arrive_once(
    argo_gateway: ArgoGateway,
) -> None:
    cluster = argo_gateway.cluster
    namespace = cluster.namespace
    run = uuid.uuid4().hex[:8]
    names = [f"burst-{run}-{i}" for i in range(300)]
    secrets = f"/api/v1/namespaces/{namespace}/secrets"

    def made() -> set[str]:  # the gateway's identity may not list Secrets: the admin's does
        with cluster.kube() as kube:
            listed = kube.get(secrets, labelSelector=f"{EXECUTION_LABEL}")
        return {item["metadata"]["labels"][EXECUTION_LABEL] for item in listed["items"]}

    async def scenario() -> tuple[int, set[str]]:
        client = KubeClient(
            load_credentials({"KUBECONFIG": str(argo_gateway.kubeconfig)}), connections=4
        )
        writer = _writer(client, namespace)
        try:
            workflows = [_workflow(name) for name in names]
            # Each one asked for twice at once (the request and the tracker), then once more.
            await asyncio.gather(*(writer.ensure(w) for w in workflows + workflows))
            await asyncio.gather(*(writer.ensure(w) for w in workflows))
            calls = client.calls
            found = await asyncio.to_thread(made)
            await asyncio.gather(*(writer.remove(w) for w in workflows))
            return calls, found
        finally:
            await client.close()

    calls, found = asyncio.run(scenario())
    assert set(names) <= found
    assert calls == len(names)  # one creation each, none repeated, none lost to the pool
    assert not set(names) & made()  # and each removed


class _BusyApi(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next status of ``script``, then 201."""

    script: list[int] = []
    posts: list[str] = []
    answer_s = 0.0  # how long each answer takes

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append(self.path)
        time.sleep(type(self).answer_s)
        status = type(self).script.pop(0) if type(self).script else 201
        body = {"kind": "Status", "reason": "TooManyRequests" if status == 429 else "X"}
        payload = json.dumps(body if status >= 400 else {"kind": "Secret"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def _busy_api(
    script: list[int], *, answer_s: float = 0.0, connections: int = 64, timeout_s: float = 30.0
) -> Iterator[KubeClient]:
    _BusyApi.script = list(script)
    _BusyApi.posts = []
    _BusyApi.answer_s = answer_s
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BusyApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        credentials = KubeCredentials(server=f"http://{host}:{port}", namespace="ns")
        yield KubeClient(credentials, timeout_s=timeout_s, connections=connections)
    finally:
        server.shutdown()
        server.server_close()


def _ensure(client: KubeClient, **timing: float) -> None:
    async def scenario() -> None:
        try:
            await _writer(client, "ns", **timing).ensure(_workflow("busy"))
        finally:
            await client.close()

    asyncio.run(scenario())


def test_a_busy_api_is_asked_again_until_the_secret_is_made() -> None:
    with _busy_api([429, 503, 429]) as client:
        _ensure(client, retry_s=0.01)
    assert _BusyApi.posts == ["/api/v1/namespaces/ns/secrets"] * 4


def test_a_refusal_is_not_asked_again() -> None:
    with _busy_api([403]) as client, pytest.raises(KubeApiError) as refused:
        _ensure(client, retry_s=0.01)
    assert refused.value.status == 403
    assert len(_BusyApi.posts) == 1


def test_an_api_busy_for_longer_than_the_patience_given_fails_the_creation() -> None:
    with _busy_api([503] * 100) as client, pytest.raises(KubeApiError) as refused:
        _ensure(client, retry_s=0.01, max_retry_s=0.02, give_up_s=0.2)
    assert refused.value.status == 503
    assert 3 <= len(_BusyApi.posts) < 100


def test_calls_queued_behind_a_slow_api_wait_for_a_connection_rather_than_fail() -> None:
    """Five Secrets through one connection to an API that takes 0.4 s an answer: the last waits
    1.6 s for the connection, longer than any one call may take (1 s), and is still made."""

    async def scenario(client: KubeClient) -> None:
        writer = _writer(client, "ns", give_up_s=0.0)  # no second try: the first must hold
        try:
            await asyncio.gather(*(writer.ensure(_workflow(f"slow-{i}")) for i in range(5)))
        finally:
            await client.close()

    with _busy_api([], answer_s=0.4, connections=1, timeout_s=1.0) as client:
        asyncio.run(scenario(client))
    assert len(_BusyApi.posts) == 5
