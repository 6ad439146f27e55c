"""The embedded engine with an S3 bucket as its artifact repository, as on a laptop pointed at
MinIO or AWS: inputs are fetched from the bucket, outputs land there, a lost bucket fails the
step naming the object."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gateway.storage.s3 import S3Config, S3Storage, open_s3_storage
from s3_server import S3Server
from tests.gateway.engines.engine_manifests import EngineFactory, sh, workflow


@asynccontextmanager
async def bucket_storage(server: S3Server, bucket: str) -> AsyncIterator[S3Storage]:
    config = S3Config(
        bucket=bucket,
        endpoint_url=server.endpoint_url,
        region=server.region,
        addressing_style="path",
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )
    async with open_s3_storage(config) as storage:
        yield storage


def _unpacked(tarball: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


async def test_inputs_come_from_the_bucket_and_outputs_go_to_it(
    open_engine: EngineFactory, s3_server: S3Server
) -> None:
    bucket = s3_server.create_bucket()
    script = (
        "mkdir -p /tmp/out/folder && tr a-z A-Z < /tmp/in/doc > /tmp/out/upper && "
        "cp /tmp/in/doc /tmp/out/folder/one && echo two > /tmp/out/folder/two"
    )
    outputs = {
        "artifacts": [
            {"name": "upper", "path": "/tmp/out/upper", "s3": {"key": "results/upper.tgz"}},
            {
                "name": "raw",
                "path": "/tmp/out/upper",
                "s3": {"key": "results/raw"},
                "archive": {"none": {}},
            },
            {
                "name": "folder",
                "path": "/tmp/out/folder",
                "s3": {"key": "results/folder"},
                "archive": {"none": {}},
            },
        ]
    }
    inputs = {"artifacts": [{"name": "doc", "path": "/tmp/in/doc", "s3": {"key": "in/doc"}}]}
    reader = sh(
        "main",
        "cat /tmp/in/folder/one /tmp/in/folder/two",
        inputs={
            "artifacts": [{"name": "f", "path": "/tmp/in/folder", "s3": {"key": "results/folder"}}]
        },
    )
    async with bucket_storage(s3_server, bucket) as storage:
        await storage.put_bytes("in/doc", b"hello s3")
        async with open_engine(artifacts=storage) as engine:
            writer = workflow([sh("main", script, inputs=inputs, outputs=outputs)])
            done = await engine.wait_for_workflow(
                (await engine.submit_workflow(writer))["metadata"]["name"]
            )
            assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
            read = await engine.wait_for_workflow(
                (await engine.submit_workflow(workflow([reader])))["metadata"]["name"]
            )
        assert read["status"]["phase"] == "Succeeded", read["status"].get("message")
        root = read["status"]["nodes"][read["metadata"]["name"]]
        assert root["outputs"]["result"] == "hello s3two"
        assert _unpacked(await storage.read_bytes("results/upper.tgz")) == {"upper": b"HELLO S3"}
        assert await storage.read_bytes("results/raw") == b"HELLO S3"
        listed = await storage.list("results/folder/")
        assert [item.key for item in listed.items] == ["results/folder/one", "results/folder/two"]


async def test_a_bucket_lost_mid_run_fails_the_step_naming_the_object(
    open_engine: EngineFactory, s3_server: S3Server
) -> None:
    bucket = s3_server.create_bucket()
    client: Any = s3_server.client()
    outputs = {"artifacts": [{"name": "out", "path": "/tmp/out", "s3": {"key": "results/out"}}]}
    # The step waits for a file in its working directory (its `/`) that the test creates.
    script = "while [ ! -e go ]; do sleep 0.05; done; echo done > /tmp/out"
    async with (
        bucket_storage(s3_server, bucket) as storage,
        open_engine(artifacts=storage) as engine,
    ):
        submitted = await engine.submit_workflow(workflow([sh("main", script, outputs=outputs)]))
        name = submitted["metadata"]["name"]
        while not (roots := list((engine.settings.work_dir / name).rglob("root"))):
            await asyncio.sleep(0.05)
        await asyncio.to_thread(client.delete_bucket, Bucket=bucket)
        (roots[0] / "go").touch()
        done = await engine.wait_for_workflow(name)
    assert done["status"]["phase"] in {"Failed", "Error"}
    messages = [node.get("message", "") for node in done["status"]["nodes"].values()]
    assert any(
        "failed to save output artifact 'out'" in m and "'results/out'" in m and bucket in m
        for m in messages
    ), messages
