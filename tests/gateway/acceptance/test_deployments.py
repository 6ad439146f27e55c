"""Deployments through the unmodified ``craft-ai-sdk==0.74.7`` client: endpoints and schedules."""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from craft_ai_sdk import INPUT_OUTPUT_TYPES
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.folders import (
    ECHO_INPUTS,
    ECHO_OUTPUTS,
    FAIL,
    REVERSE,
    echo_files,
    write_folder,
)

T = INPUT_OUTPUT_TYPES
NameFactory = Callable[[str], str]

ADD = """
def add(a, b=1):
    return {"total": a + b}
"""


def create_adder(sdk: Any, name: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "add", {"src/add.py": ADD})
    sdk.create_pipeline(
        name,
        function_path="src/add.py",
        function_name="add",
        container_config={"local_folder": str(folder)},
        inputs=[Input("a", T.NUMBER), Input("b", T.NUMBER, is_required=False)],
        outputs=[Output("total", T.NUMBER)],
    )


def create_reverse(sdk: Any, name: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "reverse", {"src/reverse.py": REVERSE})
    sdk.create_pipeline(
        name,
        function_path="src/reverse.py",
        function_name="reverse",
        container_config={"local_folder": str(folder)},
        inputs=[Input("document", T.FILE)],
        outputs=[Output("size", T.NUMBER), Output("reversed", T.FILE)],
    )


def test_an_endpoint_called_with_and_without_its_token(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)

    created = sdk.create_deployment(name, f"{name}-ep", "endpoint", description="adds")

    assert created["status"] == "up"
    assert created["execution_rule"] == "endpoint"
    assert created["endpoint_url_path"] == f"{name}-ep"
    token = created["endpoint_token"]
    assert len(token) >= 32
    assert created["pipeline"] == {"name": name}
    assert {
        m["pipeline_input_name"]: m["endpoint_input_name"] for m in created["inputs_mapping"]
    } == {
        "a": "a",
        "b": "b",
    }
    with_sdk_token = sdk.trigger_endpoint(f"{name}-ep", inputs={"a": 2, "b": 3})
    assert with_sdk_token["outputs"] == {"total": 5}
    with_endpoint_token = sdk.trigger_endpoint(f"{name}-ep", endpoint_token=token, inputs={"a": 2})
    assert with_endpoint_token["outputs"] == {"total": 3}

    executions = sdk.list_pipeline_executions(name)
    assert {e["deployment_name"] for e in executions} == {f"{name}-ep"}
    assert len(executions) == 2
    detail = sdk.get_pipeline_execution(with_endpoint_token["execution_id"])
    sources = {i["pipeline_input_name"]: (i["source"], i["value"]) for i in detail["inputs"]}
    assert sources == {"a": ("endpoint", 2), "b": ("endpoint", None)}
    assert detail["outputs"][0]["destination"] == "endpoint"
    assert (
        sdk.get_deployment(f"{name}-ep")["last_execution_id"]
        == (with_endpoint_token["execution_id"])
    )


def test_an_endpoint_with_file_inputs_as_bytes_and_open_files(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("reverse")
    create_reverse(sdk, name, tmp_path)
    token = sdk.create_deployment(name, name, "endpoint")["endpoint_token"]
    source = tmp_path / "data.bin"
    source.write_bytes(b"abc\x00\xff")

    as_bytes = sdk.trigger_endpoint(name, endpoint_token=token, inputs={"document": b"xyz"})
    with source.open("rb") as opened:
        as_file = sdk.trigger_endpoint(name, inputs={"document": opened})
    with source.open("rb") as opened:
        with_token = sdk.trigger_endpoint(name, endpoint_token=token, inputs={"document": opened})

    assert as_bytes["outputs"] == {"size": 3, "reversed": b"zyx"}
    assert as_file["outputs"] == {"size": 5, "reversed": b"\xff\x00cba"}
    assert with_token["outputs"] == {"size": 5, "reversed": b"\xff\x00cba"}


def test_an_endpoint_with_files_and_values_mixed(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    # Mixed inputs: the SDK sends each value as a text part holding its JSON (craft-api.md 5.5).
    name = pipeline_name("echo")
    folder = write_folder(tmp_path / "echo", echo_files())
    sdk.create_pipeline(
        name,
        function_path="src/echo.py",
        function_name="echo",
        container_config={"local_folder": str(folder), "included_folders": ["src", "lib"]},
        inputs=ECHO_INPUTS,
        outputs=ECHO_OUTPUTS,
    )
    token = sdk.create_deployment(
        name,
        name,
        "endpoint",
        outputs_mapping=[OutputDestination(pipeline_output_name="text", endpoint_output_name="t")],
    )["endpoint_token"]
    inputs = {
        "text": "hi",
        "number": 2,
        "flag": True,
        "data": {"x": [1, None]},
        "items": ["a"],
        "document": io.BytesIO(b"123"),
    }

    result = sdk.trigger_endpoint(name, endpoint_token=token, inputs=inputs)

    assert result["outputs"] == {
        "t": "HI!",
        "number": 4,
        "flag": False,
        "data": {"got": {"x": [1, None]}},
        "items": ["a", 1],
        "document": b"321",
    }


def test_trigger_without_waiting_then_retrieve_the_results(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    token = sdk.create_deployment(name, name, "endpoint")["endpoint_token"]

    started = sdk.trigger_endpoint(name, inputs={"a": 1}, wait_for_completion=False)
    by_token = sdk.trigger_endpoint(
        name, endpoint_token=token, inputs={"a": 10}, wait_for_completion=False
    )

    assert set(started) == {"execution_id"}
    assert sdk.retrieve_endpoint_results(name, started["execution_id"])["outputs"] == {"total": 2}
    assert sdk.retrieve_endpoint_results(name, by_token["execution_id"], token) == {
        "execution_id": by_token["execution_id"],
        "outputs": {"total": 11},
    }


def test_a_new_endpoint_token_replaces_the_old_one_at_once(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    old = sdk.create_deployment(name, name, "endpoint", endpoint_token="my-own-token-1")[
        "endpoint_token"
    ]
    assert old == "my-own-token-1"

    new = sdk.generate_new_endpoint_token(name)["endpoint_token"]
    chosen = sdk.generate_new_endpoint_token(name, endpoint_token="chosen_token-2")

    assert new not in (old, "chosen_token-2")
    assert chosen == {"endpoint_token": "chosen_token-2"}
    assert sdk.get_deployment(name)["endpoint_token"] == "chosen_token-2"
    for stale in (old, new):
        with pytest.raises(SdkException) as refused:
            sdk.trigger_endpoint(name, endpoint_token=stale, inputs={"a": 1})
        assert refused.value.status_code == 403
    assert sdk.trigger_endpoint(name, endpoint_token="chosen_token-2", inputs={"a": 1})[
        "outputs"
    ] == {"total": 2}


def test_a_failing_endpoint_execution_makes_the_sdk_raise(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("fail")
    folder = write_folder(tmp_path / "fail", {"src/fail.py": FAIL})
    sdk.create_pipeline(
        name,
        function_path="src/fail.py",
        function_name="fail",
        container_config={"local_folder": str(folder)},
        inputs=[Input("reason", T.STRING)],
    )
    token = sdk.create_deployment(name, name, "endpoint")["endpoint_token"]

    for endpoint_token in (None, token):
        with pytest.raises(SdkException) as failed:
            sdk.trigger_endpoint(name, endpoint_token=endpoint_token, inputs={"reason": "boom"})
        assert failed.value.status_code == 500
        assert "raised RuntimeError" in str(failed.value)


def test_update_list_and_delete_deployments(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    sdk.create_deployment(name, f"{name}-ep", "endpoint")
    periodic = sdk.create_deployment(
        name,
        f"{name}-cron",
        "periodic",
        schedule="0 3 * * *",
        inputs_mapping=[
            InputSource(pipeline_input_name="a", constant_value=1),
            InputSource(pipeline_input_name="b", is_null=True),
        ],
        outputs_mapping=[OutputDestination(pipeline_output_name="total", is_null=True)],
    )
    assert periodic["status"] == "up"
    assert periodic["schedule"] == "0 3 * * *"
    assert "endpoint_token" not in periodic

    disabled = sdk.update_deployment(f"{name}-cron", is_enabled=False)
    assert (disabled["status"], disabled["is_enabled"]) == ("disabled", False)
    disabled_endpoint = sdk.update_deployment(f"{name}-ep", is_enabled=False)
    assert disabled_endpoint["status"] == "disabled"
    with pytest.raises(SdkException) as refused:
        sdk.trigger_endpoint(f"{name}-ep", inputs={"a": 1})
    assert refused.value.status_code == 409
    enabled = sdk.update_deployment(f"{name}-cron", is_enabled=True)
    assert (enabled["status"], enabled["is_enabled"]) == ("up", True)
    sdk.update_deployment(f"{name}-ep", is_enabled=True)
    rescheduled = sdk.update_deployment(f"{name}-cron", schedule="*/5 * * * *")
    assert rescheduled["schedule"] == "*/5 * * * *"
    new_constant = sdk.update_deployment(
        f"{name}-cron", inputs_mapping=[InputSource(pipeline_input_name="a", constant_value=7)]
    )
    constants = {
        m["pipeline_input_name"]: m.get("constant_value") for m in new_constant["inputs_mapping"]
    }
    assert constants["a"] == 7

    listed = {d["name"]: d for d in sdk.list_deployments() if d["pipeline_name"] == name}
    assert {n: (d["execution_rule"], d["is_enabled"]) for n, d in listed.items()} == {
        f"{name}-ep": ("endpoint", True),
        f"{name}-cron": ("periodic", True),
    }
    assert sdk.delete_deployment(f"{name}-cron") == {
        "name": f"{name}-cron",
        "execution_rule": "periodic",
    }
    assert [d["name"] for d in sdk.list_deployments() if d["pipeline_name"] == name] == [
        f"{name}-ep"
    ]
    with pytest.raises(SdkException) as gone:
        sdk.get_deployment(f"{name}-cron")
    assert gone.value.status_code == 404


def test_deleting_a_pipeline_with_deployments_needs_force(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    sdk.create_deployment(name, name, "endpoint")

    with pytest.raises(SdkException) as refused:
        sdk.delete_pipeline(name)
    assert refused.value.status_code == 409
    assert sdk.get_deployment(name)["status"] == "up"

    deleted = sdk.delete_pipeline(name, force_deployments_deletion=True)
    assert deleted["deployments"] == [{"name": name, "execution_rule": "endpoint"}]
    assert name not in [d["name"] for d in sdk.list_deployments()]


@pytest.mark.realtime
def test_a_periodic_deployment_runs_at_the_next_minute(
    sdk: Any, gateway: Gateway, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    if gateway.database != "sqlite":
        pytest.skip("one real minute is enough: the schedule path does not depend on the database")
    name = pipeline_name("add")
    create_adder(sdk, name, tmp_path)
    # Whole seconds: the engine's times have no fraction, and the schedule may fire at once.
    created = datetime.now(UTC).replace(microsecond=0)
    sdk.create_deployment(
        name,
        name,
        "periodic",
        schedule="* * * * *",
        inputs_mapping=[
            InputSource(pipeline_input_name="a", constant_value=1),
            InputSource(pipeline_input_name="b", constant_value=2),
        ],
        outputs_mapping=[OutputDestination(pipeline_output_name="total", is_null=True)],
    )

    # The first tick is at most a minute away; the margin is for a machine busy with other tests.
    deadline = time.monotonic() + 120
    executions: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not executions:
        executions = [e for e in sdk.list_pipeline_executions(name) if e["end_date"]]
        time.sleep(0.5)

    assert executions, (
        "no execution within two minutes of a '* * * * *' schedule; engine state: "
        + _engine_state(gateway, name)
    )
    execution = sdk.get_pipeline_execution(executions[0]["execution_id"])
    assert execution["deployment_name"] == name
    assert execution["status"] == "Succeeded"
    started = datetime.fromisoformat(execution["created_at"].replace("Z", "+00:00"))
    assert started >= created
    assert started.second < 10  # at the minute boundary
    assert {i["pipeline_input_name"]: i["source"] for i in execution["inputs"]} == {
        "a": "constant",
        "b": "constant",
    }
    sdk.update_deployment(name, is_enabled=False)


def test_an_endpoint_writes_a_file_output_to_the_data_store(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("reverse")
    create_reverse(sdk, name, tmp_path)
    token = sdk.create_deployment(
        name,
        name,
        "endpoint",
        outputs_mapping=[
            OutputDestination(
                pipeline_output_name="reversed", datastore_path=f"{name}/{{execution_id}}.bin"
            )
        ],
    )["endpoint_token"]

    result = sdk.trigger_endpoint(name, endpoint_token=token, inputs={"document": b"abc"})

    assert result["outputs"] == {"size": 3}
    stored = io.BytesIO()
    sdk.download_data_store_object(f"{name}/{result['execution_id']}.bin", stored)
    assert stored.getvalue() == b"cba"


def _engine_state(gateway: Gateway, name: str) -> str:
    """What the embedded engine's store says of a deployment's CronWorkflow and its children."""
    with sqlite3.connect(gateway.data_dir / "tender.db") as db:
        crons = db.execute(
            "SELECT name, last_scheduled_at, created_at FROM cron_workflows"
        ).fetchall()
        workflows = db.execute(
            "SELECT name, phase, created_at FROM workflows ORDER BY created_at DESC LIMIT 8"
        ).fetchall()
        unfinished = db.execute(
            "SELECT id, status FROM executions WHERE status NOT IN "
            "('Succeeded', 'Failed', 'Error', 'Skipped')"
        ).fetchall()
    log = gateway.log.read_text(errors="replace")[-2000:]
    return (
        f"crons={crons} latest workflows={workflows} unfinished executions={unfinished} "
        f"({name}); gateway log: {log}"
    )
