"""Input artifacts follow Argo's executor: a tarball is unpacked unless `archive: {none: {}}`."""

from __future__ import annotations

import io
import tarfile

import pytest

from gateway.engines.local import LocalEngineSettings
from tests.gateway.engines.engine_manifests import EngineFactory, sh, workflow


def _tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"inside"
        info = tarfile.TarInfo("folder/file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "expected"),
    [(None, "directory inside"), ({"none": {}}, "gzip"), ({"tar": {}}, "directory inside")],
)
async def test_tarball_inputs_are_unpacked_unless_archive_none(
    open_engine: EngineFactory,
    settings: LocalEngineSettings,
    archive: dict[str, object] | None,
    expected: str,
) -> None:
    stored = settings.artifacts_root / "uploads/data.tgz"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(_tarball())
    artifact: dict[str, object] = {
        "name": "data",
        "path": "/tmp/in/data",
        "s3": {"key": "uploads/data.tgz"},
    }
    if archive is not None:
        artifact["archive"] = archive
    script = (
        'if [ -d /tmp/in/data ]; then printf "directory "; cat /tmp/in/data/file.txt; '
        'else head -c 2 /tmp/in/data | od -An -tx1 | grep -q "1f 8b" && printf gzip; fi'
    )
    manifest = workflow([sh("main", script, inputs={"artifacts": [artifact]})])
    async with open_engine() as engine:
        submitted = await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow(submitted["metadata"]["name"])
    root = done["status"]["nodes"][done["metadata"]["name"]]
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    assert root["outputs"]["result"] == expected


async def test_an_optional_declared_input_stays_optional_when_its_argument_is_missing(
    open_engine: EngineFactory,
) -> None:
    """The task's argument names a key that holds nothing; the template declares `optional`."""
    template = sh(
        "consume",
        "if [ -e /tmp/in/doc ]; then printf present; else printf absent; fi",
        inputs={"artifacts": [{"name": "doc", "path": "/tmp/in/doc", "optional": True}]},
    )
    task = {
        "name": "t",
        "template": "consume",
        "arguments": {"artifacts": [{"name": "doc", "s3": {"key": "inputs/absent"}}]},
    }
    manifest = workflow([{"name": "main", "dag": {"tasks": [task]}}, template])
    async with open_engine() as engine:
        submitted = await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow(submitted["metadata"]["name"])
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    [pod] = [n for n in done["status"]["nodes"].values() if n["type"] == "Pod"]
    assert pod["outputs"]["result"] == "absent"
