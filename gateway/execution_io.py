"""An execution's inputs and outputs as the store keeps them, and the SDK reads them back.

Each item has ``pipeline_input_name`` (or ``pipeline_output_name``), ``data_type``,
``mapping_type`` and ``mapping_value`` (craft-api.md section 5.3); the gateway adds ``key`` for
files it stores, which ``executions.public_io`` leaves out of answers. The value of an
environment variable is never recorded: it may be a secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from compiler import Deployment, InputSource, OutputDestination, Pipeline, Run
from compiler.graph import plan_pipeline
from compiler.keys import DATASTORE_PREFIX, datastore_key, resolve_key, step_output_key
from compiler.models import Input
from compiler.values import DataType

__all__ = ["deployment_inputs", "deployment_outputs", "run_inputs", "run_outputs"]

# The SDK's words for where a value comes from (docstrings of pipeline_executions.py).
_INPUT_MAPPING_TYPES = {
    "endpoint_input_name": "endpoint",
    "constant_value": "constant",
    "environment_variable_name": "environment_variable",
    "datastore_path": "datastore",
    "is_null": "is_null",
}


def run_inputs(pipeline: Pipeline, run: Run) -> list[dict[str, Any]]:
    mapped = {source.pipeline_input_name: source for source in run.inputs_mapping}
    return [
        _mapped_input(declared, mapped[declared.name])
        if declared.name in mapped
        else _run_input(declared, run)
        for declared in pipeline.inputs
    ]


def _item(declared: Input, mapping_type: str, mapping_value: dict[str, Any]) -> dict[str, Any]:
    return {
        "pipeline_input_name": declared.name,
        "data_type": declared.data_type.value,
        "mapping_type": mapping_type,
        "mapping_value": mapping_value,
    }


def _run_input(declared: Input, run: Run) -> dict[str, Any]:
    item = _item(declared, "run", {"run_input_name": declared.name})
    if declared.name in run.files:
        item["key"] = run.files[declared.name]
    elif declared.name in run.inputs:
        item["value"] = run.inputs[declared.name]
    else:
        item["value"] = declared.default_value
    return item


def _mapped_input(declared: Input, source: InputSource) -> dict[str, Any]:
    kind = source.kind
    value = getattr(source, kind)
    item = _item(declared, _INPUT_MAPPING_TYPES[kind], {kind: value})
    if kind == "constant_value":
        item["value"] = value
    elif kind == "is_null":
        item["value"] = None
    elif kind == "datastore_path":
        item["key"] = datastore_key(value, "inputs_mapping")
    return item


def run_outputs(
    pipeline: Pipeline, mappings: list[OutputDestination], workflow_name: str, created: datetime
) -> list[dict[str, Any]]:
    """Each output's destination, with the keys of file outputs resolved for this workflow."""
    plan = plan_pipeline(pipeline)
    mapped = {d.pipeline_output_name: d for d in mappings}
    items = []
    for declared in pipeline.outputs:
        destination = mapped.get(declared.name)
        kind = "run" if destination is None else destination.kind
        item: dict[str, Any] = {
            "pipeline_output_name": declared.name,
            "data_type": declared.data_type.value,
        }
        if kind == "is_null":
            item |= {"mapping_type": "is_null", "mapping_value": {"is_null": True}}
        elif kind == "datastore_path":
            assert destination is not None
            assert destination.datastore_path is not None
            key = resolve_key(
                datastore_key(destination.datastore_path, "outputs_mapping"), workflow_name, created
            )
            path = key.removeprefix(DATASTORE_PREFIX)
            item |= {"mapping_type": "datastore", "mapping_value": {"datastore_path": path}}
            item |= {"key": key, "value": None}
        else:
            item |= {"mapping_type": "run", "mapping_value": {"run_output_name": declared.name}}
            if declared.data_type is DataType.FILE:
                ref = plan.outputs[declared.name]
                item["key"] = resolve_key(
                    step_output_key(ref.step, ref.output), workflow_name, created
                )
        items.append(item)
    return items


def deployment_inputs(
    pipeline: Pipeline, deployment: Deployment, given: dict[str, Any], files: dict[str, str]
) -> list[dict[str, Any]]:
    """An endpoint or periodic execution's inputs; ``given`` and ``files`` (storage keys) are
    the call's, by pipeline input name."""
    mapped = {source.pipeline_input_name: source for source in deployment.inputs_mapping}
    items = []
    for declared in pipeline.inputs:
        source = mapped.get(declared.name)
        if source is not None and source.kind != "endpoint_input_name":
            items.append(_mapped_input(declared, source))
            continue
        endpoint_name = declared.name if source is None else source.endpoint_input_name
        mapping_value: dict[str, Any] = {"endpoint_input_name": endpoint_name}
        item = _item(declared, "endpoint", mapping_value)
        default = declared.default_value
        if source is not None:
            mapping_value |= source.model_dump(
                include={"is_required", "default_value"}, exclude_unset=True
            )
            default = mapping_value.get("default_value", default)
        if declared.name in files:
            item["key"] = files[declared.name]
        else:
            item["value"] = given.get(declared.name, default)
        items.append(item)
    return items


def deployment_outputs(
    pipeline: Pipeline, deployment: Deployment, workflow_name: str, created: datetime
) -> list[dict[str, Any]]:
    """As ``run_outputs``; what a run would return is the endpoint's output of its name."""
    endpoint_names = {
        d.pipeline_output_name: d.endpoint_output_name
        for d in deployment.outputs_mapping
        if d.kind == "endpoint_output_name"
    }
    others = [d for d in deployment.outputs_mapping if d.kind != "endpoint_output_name"]
    items = run_outputs(pipeline, others, workflow_name, created)
    for item in items:
        if item["mapping_type"] == "run":
            name = item["pipeline_output_name"]
            item["mapping_type"] = "endpoint"
            item["mapping_value"] = {"endpoint_output_name": endpoint_names.get(name, name)}
    return items
