"""Where each pipeline input comes from and where each output goes, for one run or deployment.

A run takes values of its own (the fourth kind of source); an endpoint deployment takes them
from each call; a periodic deployment has no caller, so every input and output is mapped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from compiler.errors import CompileError
from compiler.keys import ABSENT_FILE_KEY, datastore_key
from compiler.models import Deployment, Input, InputSource, OutputDestination, Pipeline, Run
from compiler.naming import is_identifier
from compiler.values import ABSENT, DataType, encode_parameter, value_problem

__all__ = [
    "Bindings",
    "Exposed",
    "Fixed",
    "FromParameter",
    "FromSecret",
    "StoredFile",
    "ToDatastore",
    "bind_deployment",
    "bind_run",
]

Rule = Literal["run", "endpoint", "periodic"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class FromParameter:
    """A workflow parameter: the caller's value (JSON text, or a storage key for a file)."""

    name: str
    value: str | None  # None: the caller must give it


@dataclass(frozen=True)
class Fixed:
    """A value fixed in the manifest: an encoded constant, ``null``, or absent."""

    text: str


@dataclass(frozen=True)
class FromSecret:
    """An environment variable, read from the Kubernetes Secret that holds them all."""

    variable: str


@dataclass(frozen=True)
class StoredFile:
    """A datastore object given to the function as a file."""

    key: str


InputBinding = FromParameter | Fixed | FromSecret | StoredFile


@dataclass(frozen=True)
class Exposed:
    """An output of the execution, read back by the gateway from the entrypoint DAG."""


@dataclass(frozen=True)
class ToDatastore:
    key: str


OutputBinding = Exposed | ToDatastore | None  # None: is_null, dropped


@dataclass(frozen=True)
class Bindings:
    inputs: dict[str, InputBinding] = field(default_factory=dict)
    outputs: dict[str, OutputBinding] = field(default_factory=dict)

    def parameters(self) -> list[FromParameter]:
        """The workflow's parameters, each once, in the order of the pipeline's inputs."""
        found = [b for b in self.inputs.values() if isinstance(b, FromParameter)]
        return list({b.name: b for b in found}.values())


def bind_run(pipeline: Pipeline, run: Run) -> Bindings:
    sources = _index_inputs(pipeline, run.inputs_mapping, "run.inputs_mapping")
    for name in [*run.inputs, *run.files]:
        declared = pipeline.input(name)
        if declared is None:
            raise CompileError(
                f"run.inputs.{name}", "undeclared_input", f"the pipeline has no input {name!r}"
            )
        if name in sources:
            raise CompileError(
                f"run.inputs.{name}",
                "duplicate_source",
                f"input {name!r} is both given and mapped in inputs_mapping",
            )
        if (name in run.files) != (declared.data_type is DataType.FILE):
            raise CompileError(
                f"run.inputs.{name}",
                "input_type",
                f"input {name!r} is of type {declared.data_type}; "
                + ("send it as a file" if name in run.inputs else "it cannot be a file"),
            )
    inputs: dict[str, InputBinding] = {}
    for declared in pipeline.inputs:
        if declared.name in sources:
            index, source = sources[declared.name]
            inputs[declared.name] = _bind_source(
                declared, source, f"run.inputs_mapping[{index}]", "run"
            )
        else:
            inputs[declared.name] = _bind_run_value(declared, run)
    outputs = _bind_outputs(pipeline, run.outputs_mapping, "run.outputs_mapping", "run")
    return Bindings(inputs, outputs)


def bind_deployment(pipeline: Pipeline, deployment: Deployment) -> Bindings:
    rule: Rule = deployment.execution_rule
    sources = _index_inputs(pipeline, deployment.inputs_mapping, "deployment.inputs_mapping")
    inputs: dict[str, InputBinding] = {}
    for n, declared in enumerate(pipeline.inputs):
        if declared.name in sources:
            index, source = sources[declared.name]
            field_ = f"deployment.inputs_mapping[{index}]"
            inputs[declared.name] = _bind_source(declared, source, field_, rule)
        elif rule == "endpoint":
            inputs[declared.name] = _endpoint_parameter(declared, None, declared.name)
        else:
            raise CompileError(
                f"pipeline.inputs[{n}]",
                "unmapped_input",
                f"a periodic deployment has no caller: map input {declared.name!r} in "
                "inputs_mapping (constant_value, is_null, environment_variable_name or "
                "datastore_path)",
            )
    _check_endpoint_inputs_unique(inputs)
    outputs = _bind_outputs(
        pipeline, deployment.outputs_mapping, "deployment.outputs_mapping", rule
    )
    return Bindings(inputs, outputs)


def _index_inputs(
    pipeline: Pipeline, mappings: Sequence[InputSource], field_: str
) -> dict[str, tuple[int, InputSource]]:
    names = [source.pipeline_input_name for source in mappings]
    declared = {i.name for i in pipeline.inputs}
    found = _index_mappings(names, declared, field_, "input")
    return {name: (index, mappings[index]) for name, index in found.items()}


def _index_mappings(
    names: Sequence[str], declared: Collection[str], field_: str, kind: str
) -> dict[str, int]:
    """Where each mapped name is in the list; a name the pipeline lacks, or mapped twice, fails."""
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        where = f"{field_}[{index}].pipeline_{kind}_name"
        if name not in declared:
            raise CompileError(where, f"undeclared_{kind}", f"the pipeline has no {kind} {name!r}")
        if name in found:
            raise CompileError(where, "duplicate_mapping", f"{kind} {name!r} is mapped twice")
        found[name] = index
    return found


def _bind_run_value(declared: Input, run: Run) -> InputBinding:
    name = declared.name
    if declared.data_type is DataType.FILE:
        if name in run.files:
            return FromParameter(name, run.files[name])
        _check_given(declared)
        return FromParameter(name, ABSENT_FILE_KEY)
    if name in run.inputs:
        value = run.inputs[name]
        _check_value(declared, value, f"run.inputs.{name}")
        return FromParameter(name, encode_parameter(value))
    _check_given(declared)
    if declared.default_value is not None:
        return FromParameter(name, encode_parameter(declared.default_value))
    return FromParameter(name, ABSENT)


def _check_given(declared: Input) -> None:
    if declared.required:
        raise CompileError(
            f"run.inputs.{declared.name}",
            "missing_input",
            f"input {declared.name!r} is required and has no value",
        )


def _check_value(declared: Input, value: Any, field_: str) -> None:
    if value is not None and (problem := value_problem(declared.data_type, value)):
        raise CompileError(field_, "input_type", f"input {declared.name!r} {problem}")


def _bind_source(declared: Input, source: InputSource, field_: str, rule: Rule) -> InputBinding:
    kind = source.kind
    is_file = declared.data_type is DataType.FILE
    if kind == "is_null":
        return Fixed("null")
    if kind == "endpoint_input_name":
        if rule != "endpoint":
            raise CompileError(
                f"{field_}.endpoint_input_name",
                "endpoint_only",
                f"endpoint_input_name only goes with endpoint deployments, not with a {rule}",
            )
        return _endpoint_parameter(declared, source, f"{field_}.endpoint_input_name")
    if kind == "datastore_path":
        if not is_file:
            _needs_file(declared, field_, "datastore_path")
        assert source.datastore_path is not None
        return StoredFile(datastore_key(source.datastore_path, f"{field_}.datastore_path"))
    if is_file:
        raise CompileError(
            f"{field_}.{kind}",
            "file_source",
            f"file input {declared.name!r} can come from a run, an endpoint, a datastore_path "
            f"or is_null, not from {kind}",
        )
    if kind == "environment_variable_name":
        assert source.environment_variable_name is not None
        _check_env_name(source.environment_variable_name, f"{field_}.environment_variable_name")
        return FromSecret(source.environment_variable_name)
    _check_value(declared, source.constant_value, f"{field_}.constant_value")
    return Fixed(encode_parameter(source.constant_value))


def _needs_file(declared: Input, field_: str, kind: str) -> None:
    raise CompileError(
        f"{field_}.{kind}",
        "file_source",
        f"{kind} gives a file, but input {declared.name!r} is of type {declared.data_type}",
    )


def _check_env_name(name: str, field_: str) -> None:
    if not _ENV_NAME.fullmatch(name):
        raise CompileError(
            field_, "environment_variable_name", f"{name!r} is not a valid variable name"
        )


def _endpoint_parameter(declared: Input, source: InputSource | None, field_: str) -> FromParameter:
    name = declared.name if source is None else source.endpoint_input_name
    assert name is not None
    if not is_identifier(name):
        raise CompileError(field_, "identifier", f"endpoint input {name!r} is not an identifier")
    is_required, default = declared.is_required, declared.default_value
    if source is not None and "is_required" in source.model_fields_set:
        is_required = source.is_required
    if source is not None and "default_value" in source.model_fields_set:
        default = source.default_value
    if declared.data_type is DataType.FILE:
        if default is not None:
            raise CompileError(field_, "file_default", "a file input cannot have a default_value")
        return FromParameter(name, None if is_required is not False else ABSENT_FILE_KEY)
    if default is not None:
        _check_value(declared, default, field_.replace("endpoint_input_name", "default_value"))
        return FromParameter(name, encode_parameter(default))
    return FromParameter(name, None if is_required is not False else ABSENT)


def _check_endpoint_inputs_unique(inputs: dict[str, InputBinding]) -> None:
    seen: dict[str, str] = {}
    for pipeline_input, binding in inputs.items():
        if isinstance(binding, FromParameter):
            if binding.name in seen:
                raise CompileError(
                    "deployment.inputs_mapping",
                    "duplicate_endpoint_input",
                    f"inputs {seen[binding.name]!r} and {pipeline_input!r} both read endpoint "
                    f"input {binding.name!r}",
                )
            seen[binding.name] = pipeline_input


def _bind_outputs(
    pipeline: Pipeline, mappings: Sequence[OutputDestination], field_: str, rule: Rule
) -> dict[str, OutputBinding]:
    names = [destination.pipeline_output_name for destination in mappings]
    declared_names = {o.name for o in pipeline.outputs}
    found = {
        name: (index, mappings[index])
        for name, index in _index_mappings(names, declared_names, field_, "output").items()
    }
    outputs: dict[str, OutputBinding] = {}
    for n, declared in enumerate(pipeline.outputs):
        if declared.name not in found:
            if rule == "periodic":
                raise CompileError(
                    f"pipeline.outputs[{n}]",
                    "unmapped_output",
                    f"a periodic deployment has no caller: map output {declared.name!r} in "
                    "outputs_mapping (datastore_path or is_null)",
                )
            outputs[declared.name] = Exposed()
            continue
        index, destination = found[declared.name]
        outputs[declared.name] = _bind_destination(
            declared.data_type, destination, f"{field_}[{index}]", rule
        )
    return outputs


def _bind_destination(
    data_type: DataType, destination: OutputDestination, field_: str, rule: Rule
) -> OutputBinding:
    kind = destination.kind
    if kind == "is_null":
        return None
    if kind == "endpoint_output_name":
        if rule != "endpoint":
            raise CompileError(
                f"{field_}.endpoint_output_name",
                "endpoint_only",
                f"endpoint_output_name only goes with endpoint deployments, not with a {rule}",
            )
        assert destination.endpoint_output_name is not None
        if not is_identifier(destination.endpoint_output_name):
            raise CompileError(
                f"{field_}.endpoint_output_name",
                "identifier",
                f"endpoint output {destination.endpoint_output_name!r} is not an identifier",
            )
        return Exposed()
    if data_type is not DataType.FILE:
        raise CompileError(
            f"{field_}.datastore_path",
            "file_destination",
            f"datastore_path stores a file, but output {destination.pipeline_output_name!r} "
            f"is of type {data_type}",
        )
    assert destination.datastore_path is not None
    return ToDatastore(datastore_key(destination.datastore_path, f"{field_}.datastore_path"))
