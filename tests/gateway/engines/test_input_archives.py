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


@pytest.mark.parametrize("argument_optional", [False, True])
async def test_an_argument_replaces_the_declared_input_but_for_its_path(
    open_engine: EngineFactory, argument_optional: bool
) -> None:
    """As Argo v4's ProcessArgs (workflow/common/util.go) does: the task's argument takes the
    declared input's place, keeping only its path. So the declaration's `optional` does not
    save an argument naming a key that holds nothing; the argument's own `optional` does."""
    template = sh(
        "consume",
        "if [ -e /tmp/in/doc ]; then printf present; else printf absent; fi",
        inputs={"artifacts": [{"name": "doc", "path": "/tmp/in/doc", "optional": True}]},
    )
    argument = {"name": "doc", "s3": {"key": "inputs/absent"}}
    if argument_optional:
        argument["optional"] = True
    task = {"name": "t", "template": "consume", "arguments": {"artifacts": [argument]}}
    manifest = workflow([{"name": "main", "dag": {"tasks": [task]}}, template])
    async with open_engine() as engine:
        submitted = await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow(submitted["metadata"]["name"])
    [pod] = [n for n in done["status"]["nodes"].values() if n["type"] == "Pod"]
    if argument_optional:
        assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
        assert pod["outputs"]["result"] == "absent"
    else:
        assert done["status"]["phase"] in ("Failed", "Error")
        assert "inputs/absent" in pod["message"]
