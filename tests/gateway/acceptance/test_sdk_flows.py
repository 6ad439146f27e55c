"""The data scientist's journey through the unmodified ``craft-ai-sdk==0.74.7`` client."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from craft_ai_sdk import INPUT_OUTPUT_TYPES
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from tests.gateway.acceptance.folders import (
    DEFAULTS,
    ECHO_INPUTS,
    ECHO_OUTPUTS,
    FAIL,
    GATED,
    MAPPED,
    OPTIONAL,
    REVERSE,
    TINY_PACKAGE,
    USES_PACKAGE,
    echo_files,
    write_folder,
)

REPO = Path(__file__).resolve().parents[3]
T = INPUT_OUTPUT_TYPES
NameFactory = Callable[[str], str]

# The platform's date shape (craft-api.md section 9.4): JavaScript's toISOString.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
EXECUTION_KEYS = {
    "execution_id",
    "status",
    "created_at",
    "created_by",
    "end_date",
    "pipeline_name",
    "deployment_name",
    "steps",
}
STEP_KEYS = {
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
ECHO_RUN = {
    "text": "hi",
    "number": 2.5,
    "flag": True,
    "data": {"x": [1, None, "y"], "nested": {"ok": False}},
    "items": [1, "two", {"three": 3}],
    "document": b"\x00abc\xff",
}
ECHO_RESULT = {
    "text": "HI!",
    "number": 5.0,
    "flag": False,
    "data": {"got": {"x": [1, None, "y"], "nested": {"ok": False}}},
    "items": [1, "two", {"three": 3}, 3],
    "document": b"\xffcba\x00",
}


def _create_echo(sdk: Any, name: str, tmp_path: Path) -> dict[str, Any]:
    folder = write_folder(tmp_path / "echo", echo_files())
    created: dict[str, Any] = sdk.create_pipeline(
        name,
        function_path="src/echo.py",
        function_name="echo",
        description="echoes every data type",
        # With src included, the SDK's archive holds src/echo.py twice (craft-api.md 5.2 b).
        container_config={"local_folder": str(folder), "included_folders": ["src", "lib"]},
        inputs=ECHO_INPUTS,
        outputs=ECHO_OUTPUTS,
    )
    return created


def _create(
    sdk: Any,
    name: str,
    folder: Path,
    function: str,
    *,
    inputs: list[Input] | None = None,
    outputs: list[Output] | None = None,
    **container_config: Any,
) -> dict[str, Any]:
    created: dict[str, Any] = sdk.create_pipeline(
        name,
        function_path=f"src/{function}.py",
        function_name=function,
        container_config={"local_folder": str(folder), **container_config},
        inputs=inputs,
        outputs=outputs,
    )
    return created


def test_the_readme_example(sdk: Any, pipeline_name: NameFactory) -> None:
    # README.md, "Using it from the Craft AI SDK", with a unique name for a shared database.
    name = pipeline_name("hello")
    sdk.create_pipeline(
        name,
        function_path="src/hello.py",
        function_name="greet",
        container_config={"local_folder": str(REPO / "examples" / "hello")},
        inputs=[Input("who", T.STRING), Input("excited", T.BOOLEAN, is_required=False)],
        outputs=[Output("greeting", T.STRING), Output("letters", T.NUMBER)],
    )

    result = sdk.run_pipeline(name, inputs={"who": "world"})

    assert result["outputs"] == {"greeting": "Hello, world.", "letters": 10}
    assert [e["execution_id"] for e in sdk.list_pipeline_executions(name)] == [
        result["execution_id"]
    ]


def test_create_pipeline_from_a_local_folder(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    created = _create_echo(sdk, name, tmp_path)

    parameters = created["parameters"]
    assert parameters["pipeline_name"] == name
    assert (parameters["function_path"], parameters["function_name"]) == ("src/echo.py", "echo")
    assert parameters["description"] == "echoes every data type"
    assert [(i["name"], i["data_type"]) for i in parameters["inputs"]] == [
        (i.name, i.data_type) for i in ECHO_INPUTS
    ]
    assert [(o["name"], o["data_type"]) for o in parameters["outputs"]] == [
        (o.name, o.data_type) for o in ECHO_OUTPUTS
    ]
    assert parameters["container_config"]["included_folders"] == ["src", "lib"]
    info = created["creation_info"]
    assert info["status"] == "ready"
    assert info["origin"] == "local"
    assert info["last_execution_id"] is None
    assert ISO_DATE.fullmatch(info["created_at"])
    assert sdk.get_pipeline(name) == created
    listed = [p for p in sdk.list_pipelines() if p["pipeline_name"] == name]
    assert listed == [{"pipeline_name": name, "created_at": info["created_at"], "status": "ready"}]


def test_run_pipeline_with_every_data_type_in_and_out(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    _create_echo(sdk, name, tmp_path)

    result = sdk.run_pipeline(name, inputs=ECHO_RUN)

    assert result["outputs"] == ECHO_RESULT
    assert isinstance(result["execution_id"], str)


@pytest.mark.parametrize("given_as", ["path", "bytes", "open file"])
def test_file_input_given_as_path_bytes_or_open_file(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path, given_as: str
) -> None:
    name = pipeline_name("reverse")
    folder = write_folder(tmp_path / "reverse", {"src/reverse.py": REVERSE})
    _create(
        sdk,
        name,
        folder,
        "reverse",
        inputs=[Input("document", T.FILE)],
        outputs=[Output("size", T.NUMBER), Output("reversed", T.FILE)],
    )
    content = bytes(range(256)) * 40 + b"end"
    source = tmp_path / "document.bin"
    source.write_bytes(content)

    if given_as == "path":
        result = sdk.run_pipeline(name, inputs={"document": str(source)})
    elif given_as == "bytes":
        result = sdk.run_pipeline(name, inputs={"document": content})
    else:
        with source.open("rb") as document:
            result = sdk.run_pipeline(name, inputs={"document": document})

    assert result["outputs"] == {"size": len(content), "reversed": content[::-1]}
    execution = sdk.get_pipeline_execution(result["execution_id"])
    assert execution["inputs"] == [
        {"pipeline_input_name": "document", "data_type": "file", "source": "run", "value": content}
    ]


def test_optional_inputs_left_out_reach_the_function_as_its_defaults(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("optional")
    folder = write_folder(tmp_path / "optional", {"src/maybe.py": OPTIONAL})
    _create(
        sdk,
        name,
        folder,
        "maybe",
        inputs=[
            Input("document", T.FILE, is_required=False),
            Input("note", T.STRING, is_required=False),
        ],
        outputs=[Output("had_file", T.BOOLEAN), Output("note", T.STRING)],
    )

    without = sdk.run_pipeline(name)
    with_file = sdk.run_pipeline(name, inputs={"document": b"x", "note": "given"})

    assert without["outputs"] == {"had_file": False, "note": "the function's default"}
    assert with_file["outputs"] == {"had_file": True, "note": "given"}


def test_inputs_mapping_with_constants_and_is_null(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("mapped")
    folder = write_folder(tmp_path / "mapped", {"src/describe.py": MAPPED})
    sdk.create_pipeline(
        name,
        function_path="src/describe.py",
        function_name="describe",
        container_config={"local_folder": str(folder)},
        inputs=[
            Input("label", T.STRING),
            Input("count", T.NUMBER, is_required=False),
            Input("flag", T.BOOLEAN),
            Input("extra", T.JSON),
        ],
        outputs=[Output("seen", T.JSON), Output("dropped", T.NUMBER)],
    )

    result = sdk.run_pipeline(
        name,
        inputs={"extra": {"k": [1]}},
        inputs_mapping=[
            InputSource(pipeline_input_name="label", constant_value="from a constant"),
            # False survives the SDK's None-stripping, and must reach the function as False.
            InputSource(pipeline_input_name="flag", constant_value=False),
            InputSource(pipeline_input_name="count", is_null=True),
        ],
        outputs_mapping=[OutputDestination(pipeline_output_name="dropped", is_null=True)],
    )

    seen = {"label": "from a constant", "count": None, "flag": False, "extra": {"k": [1]}}
    assert result["outputs"] == {"seen": seen, "dropped": None}
    execution = sdk.get_pipeline_execution(result["execution_id"])
    assert execution["inputs"] == [
        {
            "pipeline_input_name": "label",
            "data_type": "string",
            "constant_value": "from a constant",
            "source": "constant",
            "value": "from a constant",
        },
        {
            "pipeline_input_name": "count",
            "data_type": "number",
            "is_null": True,
            "source": "is_null",
            "value": None,
        },
        {
            "pipeline_input_name": "flag",
            "data_type": "boolean",
            "constant_value": False,
            "source": "constant",
            "value": False,
        },
        {"pipeline_input_name": "extra", "data_type": "json", "source": "run", "value": {"k": [1]}},
    ]
    assert execution["outputs"] == [
        {"pipeline_output_name": "seen", "data_type": "json", "destination": "run", "value": seen},
        {
            "pipeline_output_name": "dropped",
            "data_type": "number",
            "is_null": True,
            "destination": "is_null",
            "value": None,
        },
    ]


def test_a_failing_function_makes_run_pipeline_raise(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("fail")
    folder = write_folder(tmp_path / "fail", {"src/fail.py": FAIL})
    _create(sdk, name, folder, "fail", inputs=[Input("reason", T.STRING)])

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(name, inputs={"reason": "no luck today"})

    assert raised.value.name == "ExecutionFailed"
    assert "RuntimeError" in raised.value.message
    assert raised.value.status_code is not None
    assert raised.value.status_code >= 400
    [listed] = sdk.list_pipeline_executions(name)
    assert raised.value.additional_data["execution_id"] == listed["execution_id"]
    assert listed["status"] == "Failed"
    assert listed["steps"][0]["status"] == "Failed"
    assert listed["end_date"] is not None
    messages = "\n".join(
        line["message"] for line in sdk.get_pipeline_execution_logs(listed["execution_id"])
    )
    assert "about to fail" in messages
    assert "RuntimeError: no luck today" in messages


def test_list_pipeline_executions_in_the_platform_format(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    created = _create_echo(sdk, name, tmp_path)
    first = sdk.run_pipeline(name, inputs=ECHO_RUN)["execution_id"]
    second = sdk.run_pipeline(name, inputs={**ECHO_RUN, "text": "again"})["execution_id"]

    listed = sdk.list_pipeline_executions(name)

    assert {e["execution_id"] for e in listed} == {first, second}
    for execution in listed:
        assert set(execution) == EXECUTION_KEYS
        assert execution["status"] == "Succeeded"
        assert execution["pipeline_name"] == name
        assert execution["deployment_name"] is None
        assert execution["created_by"] == created["creation_info"]["created_by"]
        assert ISO_DATE.fullmatch(execution["created_at"])
        assert ISO_DATE.fullmatch(execution["end_date"])
        assert execution["end_date"] >= execution["created_at"]
        [step] = execution["steps"]
        assert set(step) == STEP_KEYS
        assert step["status"] == "Succeeded"
        assert ISO_DATE.fullmatch(step["start_date"])
        assert ISO_DATE.fullmatch(step["end_date"])
        assert step["origin"] == "local"
        assert step["requirements_path"] is None
        assert step["repository_url"] is None


def test_get_pipeline_execution_with_inputs_and_outputs(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    _create_echo(sdk, name, tmp_path)
    execution_id = sdk.run_pipeline(name, inputs=ECHO_RUN)["execution_id"]

    execution = sdk.get_pipeline_execution(execution_id)

    assert set(execution) == EXECUTION_KEYS | {"inputs", "outputs"}
    assert execution["execution_id"] == execution_id
    assert execution["status"] == "Succeeded"
    assert [set(step) for step in execution["steps"]] == [STEP_KEYS]
    assert execution["inputs"] == [
        {
            "pipeline_input_name": i.name,
            "data_type": i.data_type,
            "source": "run",
            "value": ECHO_RUN[i.name],
        }
        for i in ECHO_INPUTS
    ]
    assert execution["outputs"] == [
        {
            "pipeline_output_name": o.name,
            "data_type": o.data_type,
            "destination": "run",
            "value": ECHO_RESULT[o.name],
        }
        for o in ECHO_OUTPUTS
    ]
    assert sdk.get_pipeline_execution_output(execution_id, "document")["value"] == b"\xffcba\x00"
    assert sdk.get_pipeline_execution_input(execution_id, "items")["value"] == ECHO_RUN["items"]


def test_get_pipeline_execution_logs_hold_the_functions_print(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    _create_echo(sdk, name, tmp_path)
    execution_id = sdk.run_pipeline(name, inputs={**ECHO_RUN, "text": "log me"})["execution_id"]

    logs = sdk.get_pipeline_execution_logs(execution_id)

    assert all(set(line) >= {"timestamp", "message"} for line in logs)
    assert "echo got 'log me'" in [line["message"] for line in logs]


def test_delete_pipeline_execution(sdk: Any, pipeline_name: NameFactory, tmp_path: Path) -> None:
    name = pipeline_name("echo")
    _create_echo(sdk, name, tmp_path)
    kept = sdk.run_pipeline(name, inputs=ECHO_RUN)["execution_id"]
    deleted = sdk.run_pipeline(name, inputs=ECHO_RUN)["execution_id"]

    assert sdk.delete_pipeline_execution(deleted) == {"execution_id": deleted}

    with pytest.raises(SdkException) as raised:
        sdk.get_pipeline_execution(deleted)
    assert raised.value.status_code == 404
    assert [e["execution_id"] for e in sdk.list_pipeline_executions(name)] == [kept]
    assert sdk.get_pipeline_execution(kept)["outputs"][-1]["value"] == ECHO_RESULT["document"]


def test_delete_pipeline(sdk: Any, pipeline_name: NameFactory, tmp_path: Path) -> None:
    name = pipeline_name("echo")
    _create_echo(sdk, name, tmp_path)
    execution_id = sdk.run_pipeline(name, inputs=ECHO_RUN)["execution_id"]

    deleted = sdk.delete_pipeline(name, force_deployments_deletion=True)  # sent as "True"

    assert deleted == {"pipeline": {"name": name}, "deployments": []}

    with pytest.raises(SdkException) as raised:
        sdk.get_pipeline(name)
    assert raised.value.status_code == 404
    assert name not in [p["pipeline_name"] for p in sdk.list_pipelines()]
    with pytest.raises(SdkException) as raised:
        sdk.get_pipeline_execution(execution_id)
    assert raised.value.status_code == 404


def test_get_pipeline_with_wait_reports_the_last_execution(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    _create_echo(sdk, name, tmp_path)
    sdk.run_pipeline(name, inputs=ECHO_RUN)
    last = sdk.run_pipeline(name, inputs=ECHO_RUN)["execution_id"]

    pipeline = sdk.get_pipeline(name, wait_for_completion=True, timeout_s=60)

    assert pipeline["creation_info"]["status"] == "ready"
    assert pipeline["creation_info"]["last_execution_id"] == last


def test_create_pipeline_with_requirements_installs_them_in_its_environment(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    # The requirements name a package folder of the pipeline's own code (pip runs in that
    # folder), and forbid the index: the build installs nothing from the network.
    folder = write_folder(
        tmp_path / "greet",
        {
            "src/greet.py": USES_PACKAGE,
            "requirements.txt": "--no-index\n./pkg\n",
            **TINY_PACKAGE,
        },
    )
    name = pipeline_name("greet")

    created = _create(
        sdk,
        name,
        folder,
        "greet",
        outputs=[Output("greeting", T.STRING)],
        requirements_path="requirements.txt",
        included_folders=["pkg"],
    )

    assert created["creation_info"]["status"] == "ready"
    assert created["parameters"]["container_config"]["requirements_path"] == "requirements.txt"
    build_logs = [line["message"] for line in sdk.get_pipeline_logs(name)]
    assert any("Successfully installed tinyhelper-0.1.0" in line for line in build_logs)
    # Not importable here: the function can only find it in the pipeline's own environment.
    assert importlib.util.find_spec("tinyhelper") is None
    result = sdk.run_pipeline(name)
    assert result["outputs"] == {"greeting": "hello from tinyhelper"}
    [listed] = sdk.list_pipeline_executions(name)
    assert listed["steps"][0]["requirements_path"] == "requirements.txt"


def test_a_pipeline_without_requirements_does_not_get_other_pipelines_packages(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "greet", {"src/greet.py": USES_PACKAGE})
    name = pipeline_name("bare")
    _create(sdk, name, folder, "greet", outputs=[Output("greeting", T.STRING)])

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(name)

    assert raised.value.name == "ExecutionFailed"
    [listed] = sdk.list_pipeline_executions(name)
    messages = [line["message"] for line in sdk.get_pipeline_execution_logs(listed["execution_id"])]
    assert any("No module named 'tinyhelper'" in line for line in messages)


def test_requirements_that_cannot_install_make_the_creation_fail(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    folder = write_folder(
        tmp_path / "broken",
        {"src/greet.py": USES_PACKAGE, "requirements.txt": "--no-index\ntender-no-such-package\n"},
    )
    name = pipeline_name("broken")

    with pytest.raises(SdkException) as raised:
        _create(sdk, name, folder, "greet", requirements_path="requirements.txt")

    assert raised.value.name == "CreationFailed"
    assert sdk.get_pipeline(name)["creation_info"]["status"] == "creation_failed"
    build_logs = "\n".join(line["message"] for line in sdk.get_pipeline_logs(name))
    assert "tender-no-such-package" in build_logs
    assert "Environment build failed" in build_logs


def test_default_values_of_every_type_survive_the_form_encoding(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    # The SDK flattens defaults into form fields, every leaf as str() (craft-api.md 3.4).
    defaults = {
        "text": "some text",
        "number": 2.5,
        "flag": False,
        "data": {"list": [1, "two", None, True], "nested": {"n": 0}},
        "items": [3, "four"],
    }
    types = {"text": T.STRING, "number": T.NUMBER, "flag": T.BOOLEAN, "data": T.JSON}
    types["items"] = T.ARRAY
    name = pipeline_name("defaults")
    folder = write_folder(tmp_path / "defaults", {"src/defaults.py": DEFAULTS})

    created = _create(
        sdk,
        name,
        folder,
        "defaults",
        inputs=[
            Input(key, types[key], is_required=False, default_value=value)
            for key, value in defaults.items()
        ],
        outputs=[Output("seen", T.JSON)],
    )

    assert {i["name"]: i["default_value"] for i in created["parameters"]["inputs"]} == defaults
    assert sdk.run_pipeline(name)["outputs"] == {"seen": defaults}
    given = sdk.run_pipeline(name, inputs={"number": 7, "flag": True})["outputs"]["seen"]
    assert given == {**defaults, "number": 7, "flag": True}


def test_run_pipeline_waits_through_307_answers(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("gated")
    folder = write_folder(tmp_path / "gated", {"src/gated.py": GATED})
    _create(
        sdk,
        name,
        folder,
        "gated",
        inputs=[Input("release", T.STRING), Input("number", T.NUMBER)],
        outputs=[Output("doubled", T.NUMBER)],
    )
    release = tmp_path / "release"
    statuses: list[int] = []

    def release_after_a_307(response: Any, *args: Any, **kwargs: Any) -> None:
        # The function runs until `release` exists: create it once the SDK has been told to
        # wait, so that run_pipeline must follow at least one 307 to get its outputs.
        statuses.append(response.status_code)
        if response.status_code == 307:
            release.touch()

    sdk._session.hooks["response"].append(release_after_a_307)

    result = sdk.run_pipeline(name, inputs={"release": str(release), "number": 21})

    assert result["outputs"] == {"doubled": 42}
    assert 307 in statuses


def test_get_pipeline_waits_for_a_creation_in_progress(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    folder = write_folder(
        tmp_path / "greet",
        {"src/greet.py": USES_PACKAGE, "requirements.txt": "--no-index\n./pkg\n", **TINY_PACKAGE},
    )
    name = pipeline_name("later")
    sdk.create_pipeline(
        name,
        function_path="src/greet.py",
        function_name="greet",
        container_config={
            "local_folder": str(folder),
            "requirements_path": "requirements.txt",
            "included_folders": ["pkg"],
        },
        outputs=[Output("greeting", T.STRING)],
        wait_for_completion=False,
    )

    pipeline = sdk.get_pipeline(name, wait_for_completion=True, timeout_s=300)

    assert pipeline["creation_info"]["status"] == "ready"
    assert sdk.run_pipeline(name)["outputs"] == {"greeting": "hello from tinyhelper"}


def test_who_am_i_is_the_creator_of_pipelines_and_executions(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("echo")
    created = _create_echo(sdk, name, tmp_path)
    sdk.run_pipeline(name, inputs=ECHO_RUN)

    me = sdk.who_am_i()

    assert set(me) == {"id", "name", "email"}
    assert me["id"] == created["creation_info"]["created_by"]
    assert [e["created_by"] for e in sdk.list_pipeline_executions(name)] == [me["id"]]


def test_execution_logs_filtered_by_time_and_limit(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("fail")
    folder = write_folder(tmp_path / "fail", {"src/fail.py": FAIL})
    _create(sdk, name, folder, "fail", inputs=[Input("reason", T.STRING)])
    with pytest.raises(SdkException):
        sdk.run_pipeline(name, inputs={"reason": "for the logs"})
    [execution] = sdk.list_pipeline_executions(name)
    execution_id = execution["execution_id"]
    everything = sdk.get_pipeline_execution_logs(execution_id)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    yesterday = datetime.now(UTC) - timedelta(days=1)

    assert len(everything) > 2
    assert sdk.get_pipeline_execution_logs(execution_id, limit=2) == everything[-2:]
    assert sdk.get_pipeline_execution_logs(execution_id, from_datetime=tomorrow) == []
    assert sdk.get_pipeline_execution_logs(execution_id, to_datetime=yesterday) == []
    assert (
        sdk.get_pipeline_execution_logs(execution_id, from_datetime=yesterday, to_datetime=tomorrow)
        == everything
    )
