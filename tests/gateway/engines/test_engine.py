"""The Engine protocol on the LocalEngine: objects in and out, names, labels, templates, logs."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from gateway.engines.base import Manifest
from gateway.engines.errors import (
    InvalidLabelSelectorError,
    ManifestInvalidError,
    ObjectExistsError,
    WorkflowNotFoundError,
    WorkflowStateError,
    WorkflowTemplateNotFoundError,
)
from gateway.engines.local import LocalEngine, LocalEngineSettings
from gateway.engines.naming import fnv32a
from gateway.store import Database
from tests.gateway.engines.engine_manifests import EngineFactory, sh, workflow

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Workflows' and nodes' start and end have milliseconds (docs/ARCHITECTURE.md, "Dates").
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _template(name: str = "greeting") -> Manifest:
    manifest = workflow(
        [
            sh(
                "main",
                "echo {{inputs.parameters.who}} {{workflow.parameters.who}}",
                inputs={"parameters": [{"name": "who"}]},
            )
        ],
        arguments={"parameters": [{"name": "who", "value": "world"}]},
        workflowMetadata={"labels": {"team": "data"}},
    )
    manifest["kind"] = "WorkflowTemplate"
    manifest["metadata"] = {"name": name}
    return manifest


async def test_submit_returns_an_argo_shaped_pending_workflow(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        submitted = await engine.submit_workflow(workflow([sh("main", "true")]))
        name = submitted["metadata"]["name"]
        assert re.fullmatch(r"test-[a-z0-9]{5}", name)
        assert submitted["metadata"]["uid"]
        assert RFC3339.match(submitted["metadata"]["creationTimestamp"])
        assert submitted["status"]["phase"] in ("Pending", "Running")
        done = await engine.wait_for_workflow(name)
    status = done["status"]
    assert status["phase"] == "Succeeded"
    assert RFC3339_MS.match(status["startedAt"])
    assert RFC3339_MS.match(status["finishedAt"])
    assert status["progress"] == "1/1"
    root = status["nodes"][name]
    assert root["id"] == root["name"] == root["displayName"] == name
    assert root["type"] == "Pod"
    assert root["templateName"] == "main"
    assert root["outputs"]["exitCode"] == "0"
    assert done["metadata"]["labels"]["workflows.argoproj.io/phase"] == "Succeeded"
    assert done["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"


async def test_node_ids_and_names_follow_argo(open_engine: EngineFactory) -> None:
    manifest = workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "A", "template": "step"},
                        {"name": "B", "template": "step", "depends": "A"},
                    ]
                },
            },
            sh("step", "true"),
        ],
        metadata={"name": "ids"},
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("ids")
    nodes = done["status"]["nodes"]
    a = nodes[f"ids-{fnv32a('ids.A')}"]
    b = nodes[f"ids-{fnv32a('ids.B')}"]
    assert (a["name"], a["displayName"], a["boundaryID"], a["type"]) == ("ids.A", "A", "ids", "Pod")
    assert a["children"] == [b["id"]]
    assert nodes["ids"]["children"] == [a["id"]]
    assert nodes["ids"]["outboundNodes"] == [b["id"]]
    assert done["status"]["progress"] == "2/2"


async def test_explicit_name_collision_is_a_typed_error(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "same"}))
        with pytest.raises(ObjectExistsError, match="same"):
            await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "same"}))
        await engine.wait_for_workflow("same")


async def test_list_by_label_selector_newest_first(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        names = []
        for index, tier in enumerate(["web", "db", "web"]):
            metadata = {"name": f"wf-{index}", "labels": {"tier": tier, "app": "tender"}}
            names.append(
                (await engine.submit_workflow(workflow([sh("main", "true")], metadata=metadata)))[
                    "metadata"
                ]["name"]
            )
            await engine.wait_for_workflow(names[-1])
        web = await engine.list_workflows("tier=web")
        everything = await engine.list_workflows("")
        none = await engine.list_workflows("app in (other),tier")
        with pytest.raises(InvalidLabelSelectorError):
            await engine.list_workflows("tier in (web")
    assert {w["metadata"]["name"] for w in web} == {"wf-0", "wf-2"}
    created = [w["metadata"]["creationTimestamp"] for w in everything]
    assert created == sorted(created, reverse=True)
    assert len(everything) == 3
    assert none == []
    assert all(w["status"]["phase"] == "Succeeded" for w in everything)


async def test_get_and_delete(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", "echo hi")], metadata={"name": "gone"}))
        await engine.wait_for_workflow("gone")
        assert (await engine.workflow_logs("gone"))[0]["content"] == "hi"
        await engine.delete_workflow("gone")
        with pytest.raises(WorkflowNotFoundError):
            await engine.get_workflow("gone")
        with pytest.raises(WorkflowNotFoundError):
            await engine.delete_workflow("gone")
        with pytest.raises(WorkflowNotFoundError):
            await engine.workflow_logs("gone")


async def test_stop_of_a_completed_workflow_is_refused(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "done"}))
        await engine.wait_for_workflow("done")
        with pytest.raises(WorkflowStateError):
            await engine.stop_workflow("done")


async def test_logs_per_node_with_timestamps(open_engine: EngineFactory) -> None:
    manifest = workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "one", "template": "say"}],
                    [{"name": "two", "template": "say"}],
                ],
            },
            sh("say", "echo out; echo err >&2; printf 'no newline'"),
        ],
        metadata={"name": "logs"},
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("logs")
        logs = await engine.workflow_logs("logs")
    pods = {n["id"] for n in done["status"]["nodes"].values() if n["type"] == "Pod"}
    assert {entry["node_id"] for entry in logs} == pods
    assert sorted(e["content"] for e in logs) == sorted(["out", "err", "no newline"] * 2)
    assert {e["stream"] for e in logs if e["content"] == "err"} == {"stderr"}
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", e["timestamp"]) for e in logs)
    assert all(e["pod_name"].startswith("logs-say-") for e in logs)


async def test_workflow_templates_and_submit_from_template(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        created = await engine.create_workflow_template(_template())
        assert created["metadata"]["uid"]
        with pytest.raises(ObjectExistsError):
            await engine.create_workflow_template(_template())
        child = await engine.submit_from_template("greeting", {"who": "tender"}, {"run": "1"})
        done = await engine.wait_for_workflow(child["metadata"]["name"])
        updated = _template()
        updated["spec"]["templates"][0]["container"]["command"][2] = "echo changed"
        await engine.update_workflow_template(updated)
        assert (await engine.get_workflow_template("greeting"))["metadata"]["uid"] == (
            created["metadata"]["uid"]
        )
        await engine.delete_workflow_template("greeting")
        with pytest.raises(WorkflowTemplateNotFoundError):
            await engine.get_workflow_template("greeting")
        with pytest.raises(WorkflowTemplateNotFoundError):
            await engine.submit_from_template("greeting", {}, {})
        # a workflow from a deleted template still reads (its spec was stored when submitted)
        again = await engine.get_workflow(child["metadata"]["name"])
    assert child["metadata"]["name"].startswith("greeting-")
    labels = done["metadata"]["labels"]
    assert labels["workflows.argoproj.io/workflow-template"] == "greeting"
    assert (labels["run"], labels["team"]) == ("1", "data")
    assert done["spec"]["workflowTemplateRef"] == {"name": "greeting"}
    assert done["status"]["phase"] == "Succeeded"
    root = done["status"]["nodes"][child["metadata"]["name"]]
    assert root["outputs"]["result"] == "tender tender"
    assert again["status"]["storedWorkflowTemplateSpec"]["entrypoint"] == "main"


async def test_secret_key_ref_resolved_through_the_lookup(open_engine: EngineFactory) -> None:
    async def secrets(name: str) -> Mapping[str, str] | None:
        return {"token": "s3cr3t"} if name == "creds" else None

    def env_step(key: str) -> Manifest:
        template = sh("main", "echo ${TOKEN:-unset}")
        template["container"]["env"] = [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": key}}}
        ]
        return workflow([template], metadata={"name": f"secret-{key}"})

    async with open_engine(secrets=secrets) as engine:
        await engine.submit_workflow(env_step("token"))
        await engine.submit_workflow(env_step("missing"))
        good = await engine.wait_for_workflow("secret-token")
        bad = await engine.wait_for_workflow("secret-missing")
    assert good["status"]["nodes"]["secret-token"]["outputs"]["result"] == "s3cr3t"
    node = bad["status"]["nodes"]["secret-missing"]
    assert node["phase"] == "Error"
    assert node["message"] == "couldn't find key missing in Secret default/creds"
    assert bad["status"]["phase"] == "Error"


async def test_interpreter_resolution_is_pluggable(
    open_engine: EngineFactory, tmp_path: Path
) -> None:
    seen: list[tuple[str, str]] = []

    def resolve(command: str, manifest: Manifest) -> str | None:
        seen.append((command, manifest["metadata"]["name"]))
        return sys.executable if command == "python" else None

    script = {
        "name": "main",
        "script": {
            "image": "python:3.12",
            "command": ["python"],
            "source": "import sys; print(sys.executable)",
        },
    }
    async with open_engine(resolve_interpreter=resolve) as engine:
        await engine.submit_workflow(workflow([script], metadata={"name": "py"}))
        await engine.submit_workflow(workflow([sh("main", "true")], metadata={"name": "nosh"}))
        py = await engine.wait_for_workflow("py")
        nosh = await engine.wait_for_workflow("nosh")
    assert py["status"]["nodes"]["py"]["outputs"]["result"] == sys.executable
    assert ("python", "py") in seen
    assert nosh["status"]["nodes"]["nosh"]["message"] == (
        'exec: "sh": executable file not found in $PATH'
    )


async def test_declared_absolute_paths_are_private_to_each_step(
    open_engine: EngineFactory,
) -> None:
    producer = sh(
        "produce",
        "echo -n {{inputs.parameters.v}} > /tmp/out.txt",
        inputs={"parameters": [{"name": "v"}]},
        outputs={"parameters": [{"name": "v", "valueFrom": {"path": "/tmp/out.txt"}}]},
    )
    tasks = [
        {
            "name": f"t{i}",
            "template": "produce",
            "arguments": {"parameters": [{"name": "v", "value": str(i)}]},
        }
        for i in range(4)
    ]
    manifest = workflow(
        [{"name": "main", "dag": {"tasks": tasks}}, producer], metadata={"name": "paths"}
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("paths")
    values = {
        n["displayName"]: n["outputs"]["parameters"][0]["value"]
        for n in done["status"]["nodes"].values()
        if n["type"] == "Pod"
    }
    assert values == {f"t{i}": str(i) for i in range(4)}
    assert not Path("/tmp/out.txt").exists() or Path("/tmp/out.txt").read_text() not in values


async def test_invalid_manifests_are_refused_at_submission(open_engine: EngineFactory) -> None:
    async with open_engine() as engine:
        bad = workflow([sh("main", "true")])
        bad["spec"]["entrypoint"] = "nope"
        with pytest.raises(ManifestInvalidError, match=r"spec.entrypoint names no template"):
            await engine.submit_workflow(bad)
        cycle = workflow(
            [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {"name": "a", "template": "s", "depends": "b"},
                            {"name": "b", "template": "s", "depends": "a"},
                        ]
                    },
                },
                sh("s", "true"),
            ]
        )
        with pytest.raises(ManifestInvalidError, match="cycle"):
            await engine.submit_workflow(cycle)
        assert await engine.list_workflows() == []


async def test_returned_objects_validate_against_argos_schema(
    open_engine: EngineFactory, assert_valid_manifest: Callable[[Manifest], None]
) -> None:
    manifest = workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "a", "template": "flaky"},
                        {"name": "b", "template": "out", "depends": "a.Failed"},
                        {"name": "c", "template": "out", "depends": "a.Succeeded"},
                    ]
                },
            },
            sh("flaky", "exit 1", retryStrategy={"limit": 1}),
            sh(
                "out",
                "echo -n v > /tmp/v",
                outputs={
                    "parameters": [{"name": "v", "valueFrom": {"path": "/tmp/v"}}],
                    "artifacts": [
                        {
                            "name": "f",
                            "path": "/tmp/v",
                            "s3": {"key": "k/v"},
                            "archive": {"none": {}},
                        }
                    ],
                },
            ),
        ],
        metadata={"name": "schema"},
    )
    async with open_engine() as engine:
        await engine.submit_workflow(manifest)
        done = await engine.wait_for_workflow("schema")
        template = await engine.create_workflow_template(_template())
        cron = await engine.create_cron_workflow(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "CronWorkflow",
                "metadata": {"name": "c"},
                "spec": {
                    "schedules": ["0 0 * * *"],
                    "workflowSpec": {"workflowTemplateRef": {"name": "greeting"}},
                },
            }
        )
    types = {n["type"] for n in done["status"]["nodes"].values()}
    assert {"DAG", "Retry", "Pod", "Skipped"} <= types
    for manifest in (done, template, cron):
        assert_valid_manifest(manifest)


async def test_the_engine_runs_on_each_store(database: Database, tmp_path: Path) -> None:
    settings = LocalEngineSettings(data_dir=tmp_path / "engine")
    async with LocalEngine(database, settings) as engine:
        await engine.submit_workflow(workflow([sh("main", "echo ok")], metadata={"name": "db"}))
        done = await engine.wait_for_workflow("db")
        logs = await engine.workflow_logs("db")
        listed = await engine.list_workflows("workflows.argoproj.io/completed=true")
    assert done["status"]["phase"] == "Succeeded"
    assert [entry["content"] for entry in logs] == ["ok"]
    assert [w["metadata"]["name"] for w in listed] == ["db"]
