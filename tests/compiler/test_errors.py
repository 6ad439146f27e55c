"""Bad input: every refusal is a CompileError naming the field and the rule it broke."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from compiler import CompileError, compile_document, parse_document


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "pipeline": {
            "pipeline_name": "p",
            "function_path": "src/f.py",
            "function_name": "f",
            "inputs": [
                {"name": "x", "data_type": "number"},
                {"name": "doc", "data_type": "file", "is_required": False},
            ],
            "outputs": [{"name": "y", "data_type": "string"}],
        }
    }
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return copy.deepcopy(document)


def _steps(*steps: dict[str, Any], outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "pipeline": {
            "pipeline_name": "p",
            "inputs": [{"name": "x", "data_type": "number"}],
            "outputs": outputs or [],
            "steps": list(steps),
        },
        "run": {"inputs": {"x": 1}},
    }


def _step(name: str, inputs: list[dict[str, Any]], outputs: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "function_path": "f.py",
        "function_name": "f",
        "inputs": inputs,
        "outputs": [{"name": o, "data_type": "number"} for o in outputs],
    }


def _periodic(**changes: Any) -> dict[str, Any]:
    return _document(
        deployment={
            "name": "d",
            "execution_rule": "periodic",
            "schedule": "0 * * * *",
            "inputs_mapping": [
                {"pipeline_input_name": "x", "constant_value": 1},
                {"pipeline_input_name": "doc", "is_null": True},
            ],
            "outputs_mapping": [{"pipeline_output_name": "y", "is_null": True}],
            **changes,
        }
    )


def _run(inputs: dict[str, Any] | None = None, **mappings: Any) -> dict[str, Any]:
    return _document(run={"inputs": {"x": 1} if inputs is None else inputs, **mappings})


CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "pipeline name with capitals": (
        _document(pipeline__pipeline_name="My_Pipeline"),
        "pipeline.pipeline_name",
        "dns_label",
    ),
    "pipeline name over 63 characters": (
        _document(pipeline__pipeline_name="p" * 64),
        "pipeline.pipeline_name",
        "dns_label",
    ),
    "deployment name with a dot": (
        _periodic(name="nightly.report"),
        "deployment.name",
        "dns_label",
    ),
    "step name with an underscore": (
        _steps(_step("a_b", [], [])),
        "pipeline.steps[0].name",
        "dns_label",
    ),
    "input name that is not an identifier": (
        _document(pipeline__inputs=[{"name": "my-input", "data_type": "string"}]),
        "pipeline.inputs[0].name",
        "identifier",
    ),
    "duplicate input names": (
        _document(
            pipeline__inputs=[
                {"name": "x", "data_type": "number"},
                {"name": "x", "data_type": "string"},
            ]
        ),
        "pipeline",
        "duplicate_name",
    ),
    "duplicate output names": (
        _document(
            pipeline__outputs=[
                {"name": "y", "data_type": "number"},
                {"name": "y", "data_type": "number"},
            ]
        ),
        "pipeline",
        "duplicate_name",
    ),
    "unknown data type": (
        _document(pipeline__inputs=[{"name": "x", "data_type": "integer"}]),
        "pipeline.inputs[0].data_type",
        "enum",
    ),
    "default of the wrong type": (
        _document(pipeline__inputs=[{"name": "x", "data_type": "number", "default_value": "1"}]),
        "pipeline.inputs[0]",
        "default_type",
    ),
    "boolean default for a number": (
        _document(pipeline__inputs=[{"name": "x", "data_type": "number", "default_value": True}]),
        "pipeline.inputs[0]",
        "default_type",
    ),
    "default for a file": (
        _document(pipeline__inputs=[{"name": "f", "data_type": "file", "default_value": "a"}]),
        "pipeline.inputs[0]",
        "file_default",
    ),
    "mapping to an undeclared input": (
        _run(inputs_mapping=[{"pipeline_input_name": "nope", "is_null": True}]),
        "run.inputs_mapping[0].pipeline_input_name",
        "undeclared_input",
    ),
    "mapping to an undeclared output": (
        _run(outputs_mapping=[{"pipeline_output_name": "nope", "is_null": True}]),
        "run.outputs_mapping[0].pipeline_output_name",
        "undeclared_output",
    ),
    "mapping with no source": (
        _run(inputs_mapping=[{"pipeline_input_name": "x"}]),
        "run.inputs_mapping[0]",
        "one_source",
    ),
    "mapping with two sources": (
        _run(inputs_mapping=[{"pipeline_input_name": "x", "constant_value": 1, "is_null": True}]),
        "run.inputs_mapping[0]",
        "one_source",
    ),
    "output mapping with two destinations": (
        _run(
            outputs_mapping=[{"pipeline_output_name": "y", "is_null": True, "datastore_path": "a"}]
        ),
        "run.outputs_mapping[0]",
        "one_destination",
    ),
    "is_required on a constant": (
        _run(
            inputs_mapping=[{"pipeline_input_name": "x", "constant_value": 1, "is_required": True}]
        ),
        "run.inputs_mapping[0]",
        "endpoint_only",
    ),
    "default_value on an environment variable": (
        _run(
            inputs_mapping=[
                {"pipeline_input_name": "x", "environment_variable_name": "X", "default_value": 1}
            ]
        ),
        "run.inputs_mapping[0]",
        "endpoint_only",
    ),
    "endpoint source in a run": (
        _run(inputs={}, inputs_mapping=[{"pipeline_input_name": "x", "endpoint_input_name": "x"}]),
        "run.inputs_mapping[0].endpoint_input_name",
        "endpoint_only",
    ),
    "constant of the wrong type": (
        _run(inputs={}, inputs_mapping=[{"pipeline_input_name": "x", "constant_value": "one"}]),
        "run.inputs_mapping[0].constant_value",
        "input_type",
    ),
    "run input of the wrong type": (
        _run(inputs={"x": "1"}),
        "run.inputs.x",
        "input_type",
    ),
    "undeclared run input": (
        _run(inputs={"x": 1, "z": 2}),
        "run.inputs.z",
        "undeclared_input",
    ),
    "missing required run input": (
        _run(inputs={}),
        "run.inputs.x",
        "missing_input",
    ),
    "datastore path escaping its root": (
        _run(inputs_mapping=[{"pipeline_input_name": "doc", "datastore_path": "../etc/passwd"}]),
        "run.inputs_mapping[0].datastore_path",
        "datastore_path",
    ),
    "datastore path that is absolute": (
        _run(inputs_mapping=[{"pipeline_input_name": "doc", "datastore_path": "/a"}]),
        "run.inputs_mapping[0].datastore_path",
        "datastore_path",
    ),
    "datastore output for a string": (
        _run(outputs_mapping=[{"pipeline_output_name": "y", "datastore_path": "out/y"}]),
        "run.outputs_mapping[0].datastore_path",
        "file_destination",
    ),
    "input both given and mapped": (
        _run(inputs={"x": 1}, inputs_mapping=[{"pipeline_input_name": "x", "is_null": True}]),
        "run.inputs.x",
        "duplicate_source",
    ),
    "datastore input for a number": (
        _run(inputs={}, inputs_mapping=[{"pipeline_input_name": "x", "datastore_path": "a.csv"}]),
        "run.inputs_mapping[0].datastore_path",
        "file_source",
    ),
    "invalid environment variable name": (
        _run(
            inputs={},
            inputs_mapping=[{"pipeline_input_name": "x", "environment_variable_name": "1-X"}],
        ),
        "run.inputs_mapping[0].environment_variable_name",
        "environment_variable_name",
    ),
    "periodic deployment with an unmapped input": (
        _periodic(inputs_mapping=[{"pipeline_input_name": "x", "constant_value": 1}]),
        "pipeline.inputs[1]",
        "unmapped_input",
    ),
    "periodic deployment with an unmapped output": (
        _periodic(outputs_mapping=[]),
        "pipeline.outputs[0]",
        "unmapped_output",
    ),
    "cron expression with six fields": (
        _periodic(schedule="0 0 * * * *"),
        "deployment.schedule",
        "schedule",
    ),
    "cron expression out of range": (
        _periodic(schedule="61 * * * *"),
        "deployment.schedule",
        "schedule",
    ),
    "cron expression that never fires (30 February)": (
        _periodic(schedule="0 0 30 2 *"),
        "deployment.schedule",
        "schedule",
    ),
    "cron expression that never fires (31 April or June)": (
        _periodic(schedule="0 0 31 4,6 *"),
        "deployment.schedule",
        "schedule",
    ),
    "periodic deployment without a schedule": (
        _periodic(schedule=None),
        "deployment",
        "schedule",
    ),
    "endpoint input that is not an identifier": (
        _document(
            deployment={
                "name": "d",
                "execution_rule": "endpoint",
                "inputs_mapping": [{"pipeline_input_name": "x", "endpoint_input_name": "a b"}],
            }
        ),
        "deployment.inputs_mapping[0].endpoint_input_name",
        "identifier",
    ),
    "two inputs read one endpoint input": (
        _document(
            deployment={
                "name": "d",
                "execution_rule": "endpoint",
                "inputs_mapping": [{"pipeline_input_name": "doc", "endpoint_input_name": "x"}],
            }
        ),
        "deployment.inputs_mapping",
        "duplicate_endpoint_input",
    ),
    "step wired to a missing output": (
        _steps(
            _step("a", [], ["out"]),
            _step("b", [{"name": "v", "data_type": "number", "source": "a.nope"}], []),
        ),
        "pipeline.steps[1].inputs[0].source",
        "missing_output",
    ),
    "step wired to a missing step": (
        _steps(_step("b", [{"name": "v", "data_type": "number", "source": "ghost.out"}], [])),
        "pipeline.steps[0].inputs[0].source",
        "missing_output",
    ),
    "step reading an undeclared pipeline input": (
        _steps(_step("a", [{"name": "z", "data_type": "number"}], [])),
        "pipeline.steps[0].inputs[0].name",
        "missing_input",
    ),
    "step wired to an output of another type": (
        _steps(
            _step("a", [], ["out"]),
            _step("b", [{"name": "v", "data_type": "string", "source": "a.out"}], []),
        ),
        "pipeline.steps[1].inputs[0].data_type",
        "type_mismatch",
    ),
    "cycle": (
        _steps(
            _step("a", [{"name": "v", "data_type": "number", "source": "b.out"}], ["out"]),
            _step("b", [{"name": "v", "data_type": "number", "source": "a.out"}], ["out"]),
        ),
        "pipeline.steps",
        "cycle",
    ),
    "step reading its own output": (
        _steps(_step("a", [{"name": "v", "data_type": "number", "source": "a.out"}], ["out"])),
        "pipeline.steps",
        "cycle",
    ),
    "pipeline output no step produces": (
        _steps(_step("a", [], ["out"]), outputs=[{"name": "r", "data_type": "number"}]),
        "pipeline.outputs[0].source",
        "missing_output",
    ),
    "steps and a function at once": (
        _document(pipeline__steps=[_step("a", [], [])]),
        "pipeline",
        "pipeline_form",
    ),
    "a misspelt field": (
        _document(pipeline__function_nmae="f"),
        "pipeline.function_nmae",
        "extra_forbidden",
    ),
    "a run and a deployment at once": (
        _periodic(**{}) | {"run": {}},
        "document",
        "document",
    ),
}


@pytest.mark.parametrize(("document", "field", "rule"), CASES.values(), ids=CASES.keys())
def test_refused(document: dict[str, Any], field: str, rule: str) -> None:
    import yaml

    with pytest.raises(CompileError) as caught:
        compile_document(parse_document(yaml.safe_dump(document)))
    assert (caught.value.field, caught.value.rule) == (field, rule), caught.value.message
    assert caught.value.message


def test_error_names_field_in_its_text() -> None:
    with pytest.raises(
        CompileError, match=r"^run\.inputs\.x: input 'x' expects a number, got str$"
    ):
        compile_document(
            parse_document("pipeline: " + _pipeline_json() + "\nrun: {inputs: {x: '1'}}")
        )


def _pipeline_json() -> str:
    import json

    return json.dumps(_document()["pipeline"])


def test_invalid_yaml_is_a_compile_error() -> None:
    with pytest.raises(CompileError) as caught:
        parse_document("pipeline: [unclosed")
    assert caught.value.rule == "syntax"
