"""Environment variables through the unmodified SDK: the API, executions, requirements, secrecy.

The store may be a PostgreSQL database shared with other runs: every variable gets a random
name and is deleted after its test.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output
from sqlalchemy import select

from gateway.store import Database
from gateway.store.tables import ExecutionRow, PipelineRow
from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.folders import TINY_PACKAGE, USES_PACKAGE, write_folder

T = INPUT_OUTPUT_TYPES
NameFactory = Callable[[str], str]

# Reports what it saw as digests, so that no value can reach an output or a log through it.
READER = """
import hashlib
import os


def read(token, names):
    def digest(text):
        return hashlib.sha256(text.encode()).hexdigest()

    return {
        "from_input": digest(token),
        "from_env": {name: digest(os.environ.get(name, "<unset>")) for name in names},
    }
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def variable_name(http: requests.Session, gateway: Gateway) -> Iterator[Callable[[str], str]]:
    """``variable_name("TOKEN")`` gives ``TOKEN_<random>``; each is deleted after the test."""
    names: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(4).upper()}"
        names.append(name)
        return name

    yield make
    for name in names:
        gone = http.delete(f"{gateway.api}/environment-variables/{name}", timeout=30)
        assert gone.status_code in (200, 404), gone.text


def _listed(sdk: Any) -> dict[str, str]:
    return {item["name"]: item["value"] for item in sdk.list_environment_variables()}


def test_create_list_update_and_delete(sdk: Any, variable_name: Callable[[str], str]) -> None:
    name = variable_name("API_KEY")

    assert sdk.create_or_update_environment_variable(name, "first value") is None
    assert _listed(sdk)[name] == "first value"
    sdk.create_or_update_environment_variable(name, "second value")
    assert _listed(sdk)[name] == "second value"

    assert sdk.delete_environment_variable(name) == {"name": name, "value": "second value"}
    assert name not in _listed(sdk)
    with pytest.raises(SdkException) as raised:
        sdk.delete_environment_variable(name)
    assert raised.value.status_code == 404
    assert name in raised.value.message


def test_several_variables_are_set_at_once_and_listed_by_name(
    http: requests.Session, gateway: Gateway, variable_name: Callable[[str], str]
) -> None:
    b, a = variable_name("B"), variable_name("A")
    body = {"environment_variables": {b: "2", a: "1"}}
    answer = http.put(f"{gateway.api}/environment-variables", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"name": a}, {"name": b}]
    listed = http.get(f"{gateway.api}/environment-variables", timeout=30).json()
    mine = [item for item in listed if item["name"] in (a, b)]
    assert mine == [{"name": a, "value": "1"}, {"name": b, "value": "2"}]
    assert [item["name"] for item in listed] == sorted(item["name"] for item in listed)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("1ABC", ["not a valid identifier"]),
        ("WITH-DASH", ["not a valid identifier"]),
        ("WITH SPACE", ["not a valid identifier"]),
        ("A" * 254, ["not a valid identifier"]),
        ("", ["not a valid identifier"]),
        ("TENDER_STEP", ["reserved"]),
        ("ARGO_TOKEN", ["reserved"]),
    ],
    ids=["digit-first", "dash", "space", "too-long", "empty", "tender-prefix", "argo-prefix"],
)
def test_bad_names_are_refused_and_nothing_is_written(
    http: requests.Session,
    gateway: Gateway,
    variable_name: Callable[[str], str],
    *,
    name: str,
    words: list[str],
) -> None:
    good = variable_name("GOOD")
    value = f"secret-{secrets.token_hex(8)}"
    body = {"environment_variables": {good: value, name: value}}
    answer = http.put(f"{gateway.api}/environment-variables", json=body, timeout=30)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["name"] == "InvalidEnvironmentVariableName"
    for word in words:
        assert word in error["message"]
    assert value not in answer.text
    names = [item["name"] for item in http.get(f"{gateway.api}/environment-variables").json()]
    assert good not in names


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"environment_variables": {"NUMBER_VALUE": 12345}}, 400),
        ({"environment_variables": {"NUL_VALUE": "a\u0000b"}}, 400),
        ({"environment_variables": {"HUGE_VALUE": "x" * (64 * 1024 + 1)}}, 413),
        ({"environment_variables": {}}, 400),
        ({"variables": {"A": "b"}}, 400),
        (["A", "b"], 400),
    ],
    ids=["not-a-string", "nul", "too-large", "empty", "wrong-key", "a-list"],
)
def test_bad_values_and_bodies_are_refused_without_echoing_the_value(
    http: requests.Session, gateway: Gateway, *, body: Any, status: int
) -> None:
    answer = http.put(f"{gateway.api}/environment-variables", json=body, timeout=30)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"message", "name", "request_id", "additional_data"}
    assert "12345" not in answer.text
    assert "xxxx" not in answer.text


def test_environment_variable_routes_need_an_access_token(gateway: Gateway) -> None:
    for method in ("GET", "PUT"):
        answer = requests.request(method, f"{gateway.api}/environment-variables", timeout=30)
        assert answer.status_code == 401
    answer = requests.delete(f"{gateway.api}/environment-variables/ANY", timeout=30)
    assert answer.status_code == 401


def _create_reader(sdk: Any, name: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / name, {"src/read.py": READER})
    sdk.create_pipeline(
        name,
        function_path="src/read.py",
        function_name="read",
        container_config={"local_folder": str(folder)},
        inputs=[Input("token", T.STRING), Input("names", T.ARRAY)],
        outputs=[Output("from_input", T.STRING), Output("from_env", T.JSON)],
    )


def test_executions_see_every_variable_and_a_mapping_reads_one(
    sdk: Any,
    gateway: Gateway,
    pipeline_name: NameFactory,
    variable_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    token, other = variable_name("TOKEN"), variable_name("OTHER")
    values = {token: f"tok-{secrets.token_hex(12)}", other: f"oth-{secrets.token_hex(12)}"}
    for name, value in values.items():
        sdk.create_or_update_environment_variable(name, value)
    pipeline = pipeline_name("reader")
    _create_reader(sdk, pipeline, tmp_path)
    unset = variable_name("NEVER_SET")

    result = sdk.run_pipeline(
        pipeline,
        inputs={"names": [token, other, unset]},
        inputs_mapping=[InputSource(pipeline_input_name="token", environment_variable_name=token)],
    )

    assert result["outputs"] == {
        "from_input": _digest(values[token]),
        "from_env": {
            token: _digest(values[token]),
            other: _digest(values[other]),
            unset: _digest("<unset>"),
        },
    }
    execution = sdk.get_pipeline_execution(result["execution_id"])
    [mapped] = [i for i in execution["inputs"] if i["pipeline_input_name"] == "token"]
    assert mapped["source"] == "environment_variable"
    assert mapped["environment_variable_name"] == token
    assert values[token] not in json.dumps(execution)

    # An update reaches the next execution: values are read when a step starts.
    sdk.create_or_update_environment_variable(token, "changed")
    again = sdk.run_pipeline(
        pipeline,
        inputs={"names": [token]},
        inputs_mapping=[InputSource(pipeline_input_name="token", environment_variable_name=token)],
    )
    assert again["outputs"]["from_input"] == _digest("changed")


def test_a_deployment_sees_the_variables_as_they_are_at_each_call(
    sdk: Any, pipeline_name: NameFactory, variable_name: Callable[[str], str], tmp_path: Path
) -> None:
    """Variables created, changed or deleted after a deployment reach its next call: the
    manifests name no variable, steps read the whole Secret when they start."""
    pipeline = pipeline_name("reader")
    _create_reader(sdk, pipeline, tmp_path)
    endpoint = f"{pipeline}-ep"
    sdk.create_deployment(pipeline, endpoint, "endpoint")
    early, later = variable_name("EARLY"), variable_name("LATER")
    sdk.create_or_update_environment_variable(early, "before")

    def seen() -> dict[str, str]:
        result = sdk.trigger_endpoint(endpoint, inputs={"token": "t", "names": [early, later]})
        return dict(result["outputs"]["from_env"])

    assert seen() == {early: _digest("before"), later: _digest("<unset>")}
    sdk.create_or_update_environment_variable(later, "added")
    sdk.delete_environment_variable(early)
    assert seen() == {early: _digest("<unset>"), later: _digest("added")}


def test_a_mapping_to_a_missing_variable_fails_the_execution_naming_it(
    sdk: Any, pipeline_name: NameFactory, variable_name: Callable[[str], str], tmp_path: Path
) -> None:
    pipeline = pipeline_name("reader")
    _create_reader(sdk, pipeline, tmp_path)
    missing = variable_name("MISSING")

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(
            pipeline,
            inputs={"names": []},
            inputs_mapping=[
                InputSource(pipeline_input_name="token", environment_variable_name=missing)
            ],
        )

    assert raised.value.name == "ExecutionFailed"
    assert missing in raised.value.message
    [listed] = sdk.list_pipeline_executions(pipeline)
    assert listed["status"] in ("Failed", "Error")


def test_a_mapping_with_an_invalid_variable_name_is_refused(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    pipeline = pipeline_name("reader")
    _create_reader(sdk, pipeline, tmp_path)

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(
            pipeline,
            inputs={"names": []},
            inputs_mapping=[
                InputSource(pipeline_input_name="token", environment_variable_name="NOT-VALID")
            ],
        )

    assert raised.value.status_code == 400
    assert "NOT-VALID" in raised.value.message
    assert sdk.list_pipeline_executions(pipeline) == []


def test_requirements_expand_variables_at_build_time_and_log_only_their_names(
    sdk: Any, pipeline_name: NameFactory, variable_name: Callable[[str], str], tmp_path: Path
) -> None:
    where = variable_name("PACKAGE_DIR")
    sdk.create_or_update_environment_variable(where, "./pkg")
    files = {"src/greet.py": USES_PACKAGE, "requirements.txt": f"--no-index\n${{{where}}}\n"}
    folder = write_folder(tmp_path / "uses", {**files, **TINY_PACKAGE})
    name = pipeline_name("expanded")

    sdk.create_pipeline(
        name,
        function_path="src/greet.py",
        function_name="greet",
        container_config={
            "local_folder": str(folder),
            "requirements_path": "requirements.txt",
            "included_folders": ["src", "pkg"],
        },
        outputs=[Output("greeting", T.STRING)],
    )

    assert sdk.run_pipeline(name)["outputs"] == {"greeting": "hello from tinyhelper"}
    logs = [line["message"] for line in sdk.get_pipeline_logs(name)]
    assert f"  ${{{where}}}" in logs
    assert any("Successfully installed tinyhelper-0.1.0" in line for line in logs)


def test_no_value_reaches_a_manifest_a_record_or_the_gateways_log(
    sdk: Any,
    gateway: Gateway,
    pipeline_name: NameFactory,
    variable_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    names = [variable_name("SECRET"), variable_name("SECRET"), variable_name("SECRET")]
    values = [f"s3cr3t-{secrets.token_hex(16)}" for _ in names]
    for name, value in zip(names, values, strict=True):
        sdk.create_or_update_environment_variable(name, value)
    pipeline = pipeline_name("reader")
    _create_reader(sdk, pipeline, tmp_path)
    source = [InputSource(pipeline_input_name="token", environment_variable_name=names[0])]

    ran = sdk.run_pipeline(pipeline, inputs={"names": names}, inputs_mapping=source)
    assert ran["outputs"]["from_input"] == _digest(values[0])
    missing = [InputSource(pipeline_input_name="token", environment_variable_name="NO_SUCH")]
    with pytest.raises(SdkException) as failed:
        sdk.run_pipeline(pipeline, inputs={"names": names}, inputs_mapping=missing)
    sdk.delete_environment_variable(names[2])

    ids = [e["execution_id"] for e in sdk.list_pipeline_executions(pipeline)]
    assert len(ids) == 2
    manifests_text = json.dumps(gateway.workflow_manifests(ids))
    db = Database(gateway.database_url)
    try:
        with db.transaction() as session:
            records = session.execute(
                select(ExecutionRow.inputs, ExecutionRow.outputs).where(ExecutionRow.id.in_(ids))
            )
            records_text = json.dumps([list(row) for row in records])
            build_logs = json.dumps(
                session.scalar(select(PipelineRow.build_logs).where(PipelineRow.name == pipeline))
            )
    finally:
        db.dispose()
    # The compiled manifests reference the variables' Secret, and a mapped variable by name.
    assert '"secretRef": {"name": "tender-environment", "optional": true}' in manifests_text
    assert f'"key": "{names[0]}"' in manifests_text
    log = gateway.log.read_text(errors="replace")
    texts = {
        "manifests": manifests_text,
        "records": records_text,
        "build logs": build_logs,
        "the gateway's log": log,
        "an error": str(failed.value),
        "an execution": json.dumps([sdk.get_pipeline_execution(i) for i in ids]),
    }
    for value in values:
        for where, text in texts.items():
            assert value not in text, f"a variable's value is in {where}"
