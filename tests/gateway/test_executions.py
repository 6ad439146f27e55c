"""An Argo Workflow (as Argo's REST API returns it) becomes the platform's execution format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from compiler import OutputDestination, Pipeline, Run
from gateway.execution_io import run_inputs, run_outputs
from gateway.executions import public_io, workflow_state

PIPELINE = Pipeline.model_validate(
    {
        "pipeline_name": "p",
        "container_config": {"requirements_path": "requirements.txt"},
        "inputs": [{"name": "x", "data_type": "number"}, {"name": "f", "data_type": "file"}],
        "outputs": [
            {"name": "total", "data_type": "number", "source": "b.total"},
            {"name": "report", "data_type": "file", "source": "c.report"},
        ],
        "steps": [
            {"name": "a", "function_path": "f.py", "function_name": "a"},
            {
                "name": "b",
                "function_path": "f.py",
                "function_name": "b",
                "outputs": [{"name": "total", "data_type": "number"}],
            },
            {
                "name": "c",
                "function_path": "f.py",
                "function_name": "c",
                "outputs": [{"name": "report", "data_type": "file"}],
            },
        ],
    }
)


def _workflow(
    phase: str, nodes: dict[str, Any], outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    root = {"id": "p-abc", "name": "p-abc", "type": "DAG", "phase": phase}
    if outputs:
        root["outputs"] = outputs
    return {
        "metadata": {"name": "p-abc"},
        "status": {
            "phase": phase,
            "startedAt": "2026-01-01T10:00:00Z",
            "finishedAt": "2026-01-01T10:00:09Z" if phase != "Running" else None,
            "nodes": {"p-abc": root, **nodes},
        },
    }


def _node(
    node_id: str, name: str, phase: str, node_type: str = "Pod", **extra: Any
) -> dict[str, Any]:
    return {
        node_id: {
            "id": node_id,
            "name": name,
            "displayName": name.rsplit(".", 1)[-1],
            "type": node_type,
            "phase": phase,
            "startedAt": "2026-01-01T10:00:01Z",
            "finishedAt": "2026-01-01T10:00:05Z",
            **extra,
        }
    }


CREATED = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_steps_follow_task_nodes_and_ignore_retry_attempts() -> None:
    nodes = {
        **_node("p-1", "p-abc.a", "Succeeded"),
        **_node("p-2", "p-abc.b", "Failed", "Retry"),
        **_node("p-3", "p-abc.b(0)", "Failed"),
        **_node("p-4", "p-abc.b(1)", "Failed"),
        **_node("p-5", "p-abc.c", "Omitted", "Skipped"),
    }
    state = workflow_state(_workflow("Failed", nodes), PIPELINE, [], CREATED)
    assert state.status == "Failed"
    assert state.end_date == datetime(2026, 1, 1, 10, 0, 9, tzinfo=UTC)
    assert [(s["name"], s["status"]) for s in state.steps] == [
        ("a", "Succeeded"),
        ("b", "Failed"),
        ("c", "Skipped"),  # Argo's Omitted: the SDK has no such status
    ]
    assert state.steps[0]["start_date"] == "2026-01-01T10:00:01.000Z"
    assert state.steps[0]["requirements_path"] == "requirements.txt"
    assert set(state.steps[0]) == {
        "name",
        "status",
        "start_date",
        "end_date",
        "commit_id",
        "repository_url",
        "repository_branch",
        "requirements_path",
        "origin",
    }


def test_whole_second_times_never_put_a_step_before_its_execution() -> None:
    """Argo's times have whole seconds: created at 10:00:00.700, a step Argo says started and
    ended at 10:00:00 started and ended at 10:00:00.700 as far as anyone can tell."""
    created = datetime(2026, 1, 1, 10, 0, 0, 700_000, tzinfo=UTC)
    second = "2026-01-01T10:00:00Z"
    nodes = {
        **_node("p-1", "p-abc.a", "Succeeded", startedAt=second, finishedAt=second),
        # The embedded engine's times have milliseconds.
        **_node(
            "p-2", "p-abc.b", "Succeeded", startedAt=second, finishedAt="2026-01-01T10:00:02.250Z"
        ),
    }
    workflow = _workflow("Succeeded", nodes)
    workflow["status"]["finishedAt"] = "2026-01-01T10:00:01Z"
    state = workflow_state(workflow, PIPELINE, [], created)
    dates = [(s["start_date"], s["end_date"]) for s in state.steps[:2]]
    assert dates == [
        ("2026-01-01T10:00:00.700Z", "2026-01-01T10:00:00.700Z"),
        ("2026-01-01T10:00:00.700Z", "2026-01-01T10:00:02.250Z"),
    ]
    assert state.end_date == datetime(2026, 1, 1, 10, 0, 2, 250_000, tzinfo=UTC)


def test_steps_not_started_are_pending_and_a_new_workflow_is_pending() -> None:
    workflow = _workflow("Running", {})
    workflow["status"]["phase"] = ""
    state = workflow_state(workflow, PIPELINE, [], CREATED)
    assert state.status == "Pending"
    assert {s["status"] for s in state.steps} == {"Pending"}
    assert state.steps[0]["start_date"] is None


def test_output_values_come_from_the_root_node_once_succeeded() -> None:
    created = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    outputs = run_outputs(PIPELINE, [], "p-abc", created)
    assert outputs[1]["key"] == "executions/p-abc/c/report"
    root_outputs = {"parameters": [{"name": "total", "value": "42.5"}]}
    running = workflow_state(_workflow("Running", {}, root_outputs), PIPELINE, outputs, created)
    assert "value" not in running.outputs[0]
    done = workflow_state(_workflow("Succeeded", {}, root_outputs), PIPELINE, outputs, created)
    assert done.outputs[0]["value"] == 42.5
    assert public_io(done.outputs) == [
        {
            "pipeline_output_name": "total",
            "data_type": "number",
            "mapping_type": "run",
            "mapping_value": {"run_output_name": "total"},
            "value": 42.5,
        },
        {
            "pipeline_output_name": "report",
            "data_type": "file",
            "mapping_type": "run",
            "mapping_value": {"run_output_name": "report"},
        },
    ]


def test_datastore_destinations_are_resolved_for_the_workflow() -> None:
    destination = OutputDestination(
        pipeline_output_name="report", datastore_path="r/{date}/{execution_id}.csv"
    )
    [_, report] = run_outputs(
        PIPELINE, [destination], "p-abc", datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    )
    assert report["mapping_value"] == {"datastore_path": "r/20260301/p-abc.csv"}
    assert report["key"] == "datastore/r/20260301/p-abc.csv"


def test_inputs_record_run_values_files_and_mappings() -> None:
    run = Run(inputs={"x": 3}, files={"f": "inputs/u1/f"})
    assert run_inputs(PIPELINE, run) == [
        {
            "pipeline_input_name": "x",
            "data_type": "number",
            "mapping_type": "run",
            "mapping_value": {"run_input_name": "x"},
            "value": 3,
        },
        {
            "pipeline_input_name": "f",
            "data_type": "file",
            "mapping_type": "run",
            "mapping_value": {"run_input_name": "f"},
            "key": "inputs/u1/f",
        },
    ]
    mapped = Run(
        files={"f": "inputs/u1/f"},
        inputs_mapping=[{"pipeline_input_name": "x", "constant_value": 0}],
    )
    assert run_inputs(PIPELINE, mapped)[0] == {
        "pipeline_input_name": "x",
        "data_type": "number",
        "mapping_type": "constant",
        "mapping_value": {"constant_value": 0},
        "value": 0,
    }
