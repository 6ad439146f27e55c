"""Errors in the user's words: their own inputs and variables, never the internal
``TENDER_INPUT_*`` parameters nor the Kubernetes Secret that holds the variables."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from craft_ai_sdk import INPUT_OUTPUT_TYPES as T
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output

from tests.gateway.acceptance.folders import write_folder

NameFactory = Callable[[str], str]
INTERNAL_WORDS = ("TENDER_INPUT", "Secret", "tender-environment", "secretKeyRef")
DOUBLE = "def double(input_number):\n    return {'twice': input_number * 2}\n"


@pytest.fixture
def doubler(sdk: Any, pipeline_name: NameFactory, tmp_path: Path) -> str:
    name = pipeline_name("double")
    sdk.create_pipeline(
        name,
        function_path="src/double.py",
        function_name="double",
        container_config={"local_folder": str(write_folder(tmp_path, {"src/double.py": DOUBLE}))},
        inputs=[Input("input_number", T.NUMBER)],
        outputs=[Output("twice", T.NUMBER)],
    )
    return name


@pytest.fixture
def variable(sdk: Any) -> Iterator[str]:
    name = f"NOT_A_NUMBER_{secrets.token_hex(4).upper()}"
    yield name
    with contextlib.suppress(SdkException):  # never created
        sdk.delete_environment_variable(name)


def _failure(sdk: Any, pipeline: str, variable: str) -> str:
    mapping = InputSource(pipeline_input_name="input_number", environment_variable_name=variable)
    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(pipeline, inputs_mapping=[mapping])
    assert raised.value.name == "ExecutionFailed"
    message: str = raised.value.message
    for word in INTERNAL_WORDS:
        assert word not in message, message
    return message


def test_a_variable_that_is_not_a_number_is_named_with_the_input(
    sdk: Any, doubler: str, variable: str
) -> None:
    sdk.create_or_update_environment_variable(variable, "twelve")
    message = _failure(sdk, doubler, variable)
    assert variable in message
    assert "'input_number'" in message
    assert "twelve" not in message  # a variable's value is never shown
    [execution] = sdk.list_pipeline_executions(doubler)
    logs = sdk.get_pipeline_execution_logs(execution_id=execution["execution_id"])
    assert not any(w in line["message"] for line in logs for w in INTERNAL_WORDS), logs


def test_a_missing_variable_is_named_with_the_input(sdk: Any, doubler: str, variable: str) -> None:
    message = _failure(sdk, doubler, variable)
    assert f"environment variable {variable!r} does not exist" in message
    assert "'input_number'" in message
