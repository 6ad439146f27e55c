"""What the Engine protocol promises, checked on each engine: the embedded one and Argo's
(the watch's part is test_contract.py).

Both take the same manifests and return Workflows shaped as Argo shapes them. On Argo the tests
run against the real controller of the test cluster, as the gateway's narrow identity.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from gateway.engines.errors import (
    CronWorkflowNotFoundError,
    InvalidLabelSelectorError,
    ManifestInvalidError,
    ObjectExistsError,
    WorkflowNotFoundError,
    WorkflowStateError,
    WorkflowTemplateNotFoundError,
)
from gateway.engines.naming import node_id
from tests.gateway.engines.engine_kits import KitFactory
from tests.gateway.engines.engine_manifests import sh, workflow

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# A status time: Argo's whole seconds, or the embedded engine's milliseconds.
STATUS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _dag(**spec: Any) -> dict[str, Any]:
    """main: A, then B reading A's output parameter; B's output is the workflow's."""
    return workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "A", "template": "produce"},
                        {
                            "name": "B",
                            "template": "consume",
                            "depends": "A",
                            "arguments": {
                                "parameters": [
                                    {"name": "x", "value": "{{tasks.A.outputs.parameters.y}}"}
                                ]
                            },
                        },
                    ]
                },
            },
            sh(
                "produce",
                "mkdir -p /tmp/out && printf 21 > /tmp/out/y",
                outputs={"parameters": [{"name": "y", "valueFrom": {"path": "/tmp/out/y"}}]},
            ),
            sh(
                "consume",
                "echo got {{inputs.parameters.x}}",
                inputs={"parameters": [{"name": "x"}]},
            ),
        ],
        **spec,
    )


async def test_a_dag_runs_to_an_argo_shaped_status(engine_kit: KitFactory) -> None:
    async with engine_kit() as kit:
        submitted = await kit.engine.submit_workflow(_dag())
        name = submitted["metadata"]["name"]
        assert re.fullmatch(r"test-[a-z0-9]{5}", name)
        assert submitted["metadata"]["uid"]
        assert RFC3339.match(submitted["metadata"]["creationTimestamp"])
        done = await kit.wait(name)
        logs = await kit.engine.workflow_logs(name)
    status = done["status"]
    assert status["phase"] == "Succeeded"
    assert STATUS_TIME.match(status["startedAt"])
    assert STATUS_TIME.match(status["finishedAt"])
    nodes = status["nodes"]
    a, b = nodes[node_id(name, f"{name}.A")], nodes[node_id(name, f"{name}.B")]
    assert (a["type"], a["phase"], a["displayName"], a["templateName"]) == (
        "Pod",
        "Succeeded",
        "A",
        "produce",
    )
    assert a["outputs"]["parameters"][0]["value"] == "21"
    assert nodes[name]["type"] == "DAG"
    assert a["id"] in nodes[name]["children"]
    assert done["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"
    [line] = [entry for entry in logs if entry["node_id"] == b["id"]]
    assert line["content"] == "got 21"
    assert LOG_TIME.match(line["timestamp"])


async def test_a_failing_step_fails_its_workflow_with_the_exit_code(
    engine_kit: KitFactory,
) -> None:
    async with engine_kit() as kit:
        name = (await kit.engine.submit_workflow(workflow([sh("main", "exit 3")])))["metadata"][
            "name"
        ]
        done = await kit.wait(name)
    node = done["status"]["nodes"][name]
    assert done["status"]["phase"] == "Failed"
    assert node["phase"] == "Failed"
    assert node["message"].endswith("Error (exit code 3)")


async def test_names_are_unique_and_lookups_typed(engine_kit: KitFactory) -> None:
    manifest = workflow([sh("main", "true")], metadata={"name": "same"})
    async with engine_kit() as kit:
        await kit.engine.submit_workflow(manifest)
        with pytest.raises(ObjectExistsError, match="same"):
            await kit.engine.submit_workflow(manifest)
        await kit.wait("same")
        with pytest.raises(WorkflowNotFoundError):
            await kit.engine.get_workflow("never-submitted")
        with pytest.raises(WorkflowStateError):
            await kit.engine.stop_workflow("same")
        await kit.engine.delete_workflow("same")
        with pytest.raises(WorkflowNotFoundError):
            await kit.engine.get_workflow("same")
        with pytest.raises(WorkflowNotFoundError):
            await kit.engine.delete_workflow("same")


async def test_an_invalid_manifest_is_refused_naming_the_field(engine_kit: KitFactory) -> None:
    manifest = workflow([sh("main", "true")])
    manifest["spec"]["templates"] = "not a list"
    async with engine_kit() as kit:
        with pytest.raises(ManifestInvalidError) as raised:
            await kit.engine.submit_workflow(manifest)
    assert "templates" in str(raised.value)


async def test_list_by_label_selector_newest_first(engine_kit: KitFactory) -> None:
    async with engine_kit() as kit:
        for index, tier in enumerate(["web", "db", "web"]):
            metadata = {"name": f"wf-{index}", "labels": {"tier": tier, "app": "contract"}}
            await kit.engine.submit_workflow(workflow([sh("main", "true")], metadata=metadata))
            await kit.wait(f"wf-{index}")
            await asyncio.sleep(1.1)  # creation times have whole seconds
        web = await kit.engine.list_workflows("tier=web")
        everything = await kit.engine.list_workflows("app=contract")
        none = await kit.engine.list_workflows("app in (other),tier")
        with pytest.raises(InvalidLabelSelectorError):
            await kit.engine.list_workflows("tier in (web")
    assert [w["metadata"]["name"] for w in web] == ["wf-2", "wf-0"]
    assert [w["metadata"]["name"] for w in everything] == ["wf-2", "wf-1", "wf-0"]
    assert all(w["status"]["phase"] == "Succeeded" for w in everything)
    assert none == []


async def test_a_running_workflow_is_stopped(engine_kit: KitFactory) -> None:
    async with engine_kit() as kit:
        name = (
            await kit.engine.submit_workflow(
                workflow([sh("main", "sleep 60")], metadata={"generateName": "stop-"})
            )
        )["metadata"]["name"]
        for _ in range(300):
            node = (await kit.engine.get_workflow(name))["status"].get("nodes", {}).get(name, {})
            if node.get("phase") == "Running":
                break
            await asyncio.sleep(0.1)
        stopped = await kit.engine.stop_workflow(name)
        assert stopped["spec"]["shutdown"] == "Stop"
        done = await kit.wait(name, timeout_s=60)
    assert done["status"]["phase"] in ("Failed", "Error")
    assert "Stopped with strategy 'Stop'" in done["status"]["message"]


async def test_secret_keys_reach_steps_by_reference(engine_kit: KitFactory) -> None:
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "team-env", "key": "token"}}},
        {
            "name": "ABSENT",
            "valueFrom": {"secretKeyRef": {"name": "team-env", "key": "nope", "optional": True}},
        },
    ]
    template = sh("main", 'echo "token=$TOKEN absent=${ABSENT-unset}"')
    template["container"]["env"] = env
    async with engine_kit() as kit:
        await kit.put_secret("team-env", {"token": "s3cr3t"})
        name = (await kit.engine.submit_workflow(workflow([template])))["metadata"]["name"]
        done = await kit.wait(name)
        logs = await kit.engine.workflow_logs(name)
    assert done["status"]["phase"] == "Succeeded"
    assert [e["content"] for e in logs] == ["token=s3cr3t absent=unset"]


async def test_templates_are_created_updated_submitted_and_deleted(
    engine_kit: KitFactory,
) -> None:
    template = workflow(
        [
            sh(
                "main",
                "echo hello {{inputs.parameters.who}}",
                inputs={"parameters": [{"name": "who", "value": "nobody"}]},
            )
        ]
    )
    template["kind"] = "WorkflowTemplate"
    template["metadata"] = {"name": "greeter", "labels": {"app": "contract"}}
    async with engine_kit() as kit:
        engine = kit.engine
        created = await engine.create_workflow_template(template)
        assert created["metadata"]["name"] == "greeter"
        with pytest.raises(ObjectExistsError):
            await engine.create_workflow_template(template)
        command = template["spec"]["templates"][0]["container"]["command"]
        command[-1] = "echo hi {{inputs.parameters.who}}"
        await engine.update_workflow_template(template)
        fetched = await engine.get_workflow_template("greeter")
        assert "echo hi" in fetched["spec"]["templates"][0]["container"]["command"][-1]
        submitted = await engine.submit_from_template(
            "greeter", {"who": "you"}, {"tender.io/trigger": "endpoint"}
        )
        labels = submitted["metadata"]["labels"]
        assert labels["workflows.argoproj.io/workflow-template"] == "greeter"
        assert labels["tender.io/trigger"] == "endpoint"
        name = submitted["metadata"]["name"]
        assert name.startswith("greeter-")
        done = await kit.wait(name)
        logs = await engine.workflow_logs(name)
        with pytest.raises(WorkflowTemplateNotFoundError):
            await engine.submit_from_template("no-such-template", {}, {})
        await engine.delete_workflow_template("greeter")
        with pytest.raises(WorkflowTemplateNotFoundError):
            await engine.get_workflow_template("greeter")
    assert done["status"]["phase"] == "Succeeded"
    assert [e["content"] for e in logs] == ["hi you"]


async def test_cron_workflows_are_created_suspended_resumed_and_deleted(
    engine_kit: KitFactory,
) -> None:
    cron = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly", "labels": {"app": "contract"}},
        "spec": {
            "schedules": ["0 3 * * *"],
            "timezone": "UTC",
            "workflowSpec": {"entrypoint": "main", "templates": [sh("main", "true")]},
        },
    }
    async with engine_kit() as kit:
        engine = kit.engine
        created = await engine.create_cron_workflow(cron)
        assert created["spec"]["schedules"] == ["0 3 * * *"]
        with pytest.raises(ObjectExistsError):
            await engine.create_cron_workflow(cron)
        assert (await engine.suspend_cron_workflow("nightly"))["spec"]["suspend"] is True
        assert (await engine.resume_cron_workflow("nightly"))["spec"]["suspend"] is False
        cron["spec"]["schedules"] = ["*/5 * * * *"]
        await engine.update_cron_workflow(cron)
        assert (await engine.get_cron_workflow("nightly"))["spec"]["schedules"] == ["*/5 * * * *"]
        await engine.delete_cron_workflow("nightly")
        with pytest.raises(CronWorkflowNotFoundError):
            await engine.get_cron_workflow("nightly")
        with pytest.raises(CronWorkflowNotFoundError):
            await engine.suspend_cron_workflow("nightly")
