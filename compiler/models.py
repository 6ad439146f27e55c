"""The definitions the compiler takes, in the client's own words.

Field names follow what ``craft-ai-sdk`` 0.74.7 sends (docs/craft-api.md sections 4, 5.2
and 5.4), so the gateway can pass its requests through. Beyond the SDK, a pipeline may hold
several ``steps`` wired into a DAG; the SDK's function pipeline is the one-step case.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from compiler.naming import OBJECT_NAME_MAX, is_dns_label, is_identifier
from compiler.values import DataType, value_problem

__all__ = [
    "ContainerConfig",
    "Deployment",
    "Input",
    "InputSource",
    "Output",
    "OutputDestination",
    "Pipeline",
    "Run",
    "Step",
    "StepInput",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)

INPUT_SOURCE_FIELDS = (
    "endpoint_input_name",
    "constant_value",
    "environment_variable_name",
    "datastore_path",
    "is_null",
)
OUTPUT_DESTINATION_FIELDS = ("endpoint_output_name", "datastore_path", "is_null")


def invalid(rule: str, message: str) -> PydanticCustomError:
    """A validation error whose type is the rule broken; the message is already formatted."""
    return PydanticCustomError(rule, message)


def _check_dns_label(value: str, what: str) -> str:
    if not is_dns_label(value):
        raise invalid(
            "dns_label",
            f"{what} {value!r} is not a valid name: use at most {OBJECT_NAME_MAX} characters "
            "among lowercase letters, digits and '-', starting and ending with a letter or digit",
        )
    return value


def _check_identifier(value: str) -> str:
    if not is_identifier(value):
        raise invalid(
            "identifier",
            f"{value!r} is not a valid input or output name: use a Python identifier "
            "(letters, digits and '_', not starting with a digit, not a keyword)",
        )
    return value


def _check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise invalid("duplicate_name", f"duplicate {what} name {name!r}")
        seen.add(name)


class Output(BaseModel):
    model_config = _STRICT

    name: str
    data_type: DataType
    description: str | None = None

    _name = field_validator("name")(classmethod(lambda cls, v: _check_identifier(v)))


class Input(Output):
    is_required: bool | None = None
    default_value: Any = None

    @property
    def required(self) -> bool:
        """The SDK leaves ``is_required`` out when unset; the platform then requires the input."""
        return self.is_required is not False and self.default_value is None

    @model_validator(mode="after")
    def _default_fits_type(self) -> Self:
        if self.default_value is None:
            return self
        if self.data_type is DataType.FILE:
            raise invalid("file_default", "a file input cannot have a default_value")
        if problem := value_problem(self.data_type, self.default_value):
            raise invalid("default_type", f"the default_value of input {self.name!r} {problem}")
        return self


class StepInput(Input):
    """A step's input: from the pipeline input of the same name, or ``source: <step>.<output>``."""

    source: str | None = None


class PipelineOutput(Output):
    """A pipeline output; in a multi-step pipeline ``source: <step>.<output>`` says which."""

    source: str | None = None


class Step(BaseModel):
    model_config = _STRICT

    name: str
    function_path: str
    function_name: str
    description: str | None = None
    inputs: list[StepInput] = Field(default_factory=list)
    outputs: list[Output] = Field(default_factory=list)

    _step_name = field_validator("name")(classmethod(lambda cls, v: _check_dns_label(v, "step")))

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _check_unique([i.name for i in self.inputs], "input")
        _check_unique([o.name for o in self.outputs], "output")
        return self


class ContainerConfig(BaseModel):
    model_config = _STRICT

    language: str | None = None
    requirements_path: str | None = None
    included_folders: list[str] = Field(default_factory=list)
    system_dependencies: list[str] = Field(default_factory=list)
    dockerfile_path: str | None = None
    repository_url: str | None = None
    repository_branch: str | None = None
    repository_deploy_key: SecretStr | None = None
    local_folder: str | None = None

    @field_validator("language")
    @classmethod
    def _python_image(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("python:", "python-cuda:")):
            raise invalid(
                "language",
                f"language {value!r} is not supported: use an image such as python:3.12-slim",
            )
        return value


class Pipeline(BaseModel):
    model_config = _STRICT

    pipeline_name: str
    function_path: str | None = None
    function_name: str | None = None
    description: str | None = None
    inputs: list[Input] = Field(default_factory=list)
    outputs: list[PipelineOutput] = Field(default_factory=list)
    container_config: ContainerConfig = Field(default_factory=ContainerConfig)
    steps: list[Step] = Field(default_factory=list)

    _pipeline_name = field_validator("pipeline_name")(
        classmethod(lambda cls, v: _check_dns_label(v, "pipeline_name"))
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        _check_unique([i.name for i in self.inputs], "input")
        _check_unique([o.name for o in self.outputs], "output")
        _check_unique([s.name for s in self.steps], "step")
        has_function = self.function_path is not None or self.function_name is not None
        if self.steps and has_function:
            raise invalid(
                "pipeline_form",
                "give either function_path and function_name (one step) or steps, not both",
            )
        if not self.steps and (self.function_path is None or self.function_name is None):
            raise invalid("pipeline_form", "function_path and function_name are both required")
        return self

    def all_steps(self) -> list[Step]:
        """The steps of the DAG: the SDK's function pipeline is one step named after it."""
        return list(self.steps) if self.steps else [self._function_step]

    @cached_property
    def _function_step(self) -> Step:
        """Built once: the gateway asks for the steps of a pipeline at every change of its
        executions (the model is frozen, so the step never goes stale)."""
        assert self.function_path is not None
        assert self.function_name is not None
        return Step(
            name=self.pipeline_name,
            function_path=self.function_path,
            function_name=self.function_name,
            inputs=[StepInput(**i.model_dump()) for i in self.inputs],
            outputs=[Output(**o.model_dump(exclude={"source"})) for o in self.outputs],
        )

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output(self, name: str) -> PipelineOutput | None:
        return next((o for o in self.outputs if o.name == name), None)


class InputSource(BaseModel):
    """Where a pipeline input comes from: exactly one of the five source fields."""

    model_config = _STRICT

    pipeline_input_name: str
    endpoint_input_name: str | None = None
    constant_value: Any = None
    environment_variable_name: str | None = None
    datastore_path: str | None = None
    is_null: bool | None = None
    is_required: bool | None = None
    default_value: Any = None

    @property
    def kind(self) -> str:
        return next(f for f in INPUT_SOURCE_FIELDS if self._has(f))

    def _has(self, field: str) -> bool:
        # constant_value may legitimately be 0, "" or False; only its absence means "unset".
        if field == "constant_value":
            return "constant_value" in self.model_fields_set
        if field == "is_null":
            return self.is_null is True
        return getattr(self, field) is not None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        given = [f for f in INPUT_SOURCE_FIELDS if self._has(f)]
        if len(given) != 1:
            raise invalid(
                "one_source",
                f"input {self.pipeline_input_name!r} needs exactly one of "
                f"{', '.join(INPUT_SOURCE_FIELDS)}; got {', '.join(given) or 'none'}",
            )
        extras = [f for f in ("is_required", "default_value") if f in self.model_fields_set]
        if extras and given[0] != "endpoint_input_name":
            raise invalid(
                "endpoint_only",
                f"{' and '.join(extras)} may only be given with endpoint_input_name, "
                f"not with {given[0]}",
            )
        return self


class OutputDestination(BaseModel):
    """Where a pipeline output goes: exactly one of the three destination fields."""

    model_config = _STRICT

    pipeline_output_name: str
    endpoint_output_name: str | None = None
    datastore_path: str | None = None
    is_null: bool | None = None

    @property
    def kind(self) -> str:
        return next(f for f in OUTPUT_DESTINATION_FIELDS if self._has(f))

    def _has(self, field: str) -> bool:
        if field == "is_null":
            return self.is_null is True
        return getattr(self, field) is not None

    @model_validator(mode="after")
    def _exactly_one_destination(self) -> Self:
        given = [f for f in OUTPUT_DESTINATION_FIELDS if self._has(f)]
        if len(given) != 1:
            raise invalid(
                "one_destination",
                f"output {self.pipeline_output_name!r} needs exactly one of "
                f"{', '.join(OUTPUT_DESTINATION_FIELDS)}; got {', '.join(given) or 'none'}",
            )
        return self


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # The SDK's JSON body calls it "name" (core/deployments.py:433).
    deployment_name: str = Field(alias="name")
    execution_rule: Literal["endpoint", "periodic"]
    pipeline_name: str | None = None
    mode: Literal["elastic", "low_latency"] = "elastic"
    schedule: str | None = None
    endpoint_url_path: str | None = None
    endpoint_token: SecretStr | None = None
    inputs_mapping: list[InputSource] = Field(default_factory=list)
    outputs_mapping: list[OutputDestination] = Field(default_factory=list)
    execution_timeout_s: int | None = Field(default=None, gt=0)
    enable_parallel_executions: bool | None = None
    max_parallel_executions_per_pod: int | None = None
    ram_request: str | None = None
    gpu_request: int | None = None
    description: str | None = None

    _deployment_name = field_validator("deployment_name")(
        classmethod(lambda cls, v: _check_dns_label(v, "deployment_name"))
    )

    @model_validator(mode="after")
    def _rule_fields(self) -> Self:
        if self.execution_rule == "periodic" and self.schedule is None:
            raise invalid("schedule", "a periodic deployment needs a schedule")
        if self.execution_rule == "endpoint" and self.schedule is not None:
            raise invalid("schedule", "schedule only goes with the periodic execution rule")
        return self


class Run(BaseModel):
    """One execution of a pipeline: its own inputs (the fourth kind of source) and mappings.

    ``inputs`` are the JSON values of ``json_inputs``; ``files`` maps a file input to the
    storage key its uploaded content was written to.
    """

    model_config = _STRICT

    inputs: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    inputs_mapping: list[InputSource] = Field(default_factory=list)
    outputs_mapping: list[OutputDestination] = Field(default_factory=list)
    execution_timeout_s: int | None = Field(default=None, gt=0)
