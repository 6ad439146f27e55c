"""One step of a pipeline as an Argo script template running the step runner, and its DAG task.

Inside the container everything tender writes lives under ``/tmp/tender`` (writable by any user
of any ``python:3.X-slim`` image): the code and dependency archives, file inputs and outputs.
The runner learns its function, inputs and outputs from the ``TENDER_STEP`` variable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from hera.workflows import models as m

from compiler.bindings import Bindings, FromParameter, FromSecret, StoredFile
from compiler.execution_secret import SDK_ENVIRONMENT, execution_secret_name
from compiler.graph import Plan, StepOutputRef
from compiler.keys import ABSENT_FILE_KEY, code_key, dependencies_key, step_output_key
from compiler.models import Output, Step, StepInput
from compiler.values import MAX_VALUE_BYTES, DataType

__all__ = ["StepContext", "step_task", "step_template", "template_name"]

ROOT = "/tmp/tender"  # noqa: S108 - a path inside the step's own container
CODE_DIR = f"{ROOT}/code"
DEPS_DIR = f"{ROOT}/deps"
RUNNER_ENV = "TENDER_STEP"
# Isolated mode: no PYTHON* variables, no user site-packages, no script folder on sys.path. The
# step gets exactly the interpreter and packages of its image (or pipeline environment).
PYTHON_COMMAND = ("python", "-I")
INPUT_ENV_PREFIX = "TENDER_INPUT_"
# The SDK reads the execution id from here inside an execution (shared/execution_context.py).
EXECUTION_ID_ENV = "CRAFT_AI_EXECUTION_ID"


@dataclass(frozen=True)
class StepContext:
    """What every step of one manifest shares."""

    pipeline_name: str
    plan: Plan
    bindings: Bindings
    image: str
    runner_source: str  # what each script template's `source` holds
    secret_name: str
    datastore_keys: dict[StepOutputRef, str]


@dataclass(frozen=True)
class _Wire:
    """How one input reaches a step: a parameter ``value``, a ``secret`` variable, or a file
    artifact fetched by S3 ``key`` or ``from`` an upstream task."""

    kind: Literal["value", "secret", "key", "from"]
    argument: str
    # A file that may be missing: the function then gets no argument and its own default.
    optional: bool = False


def template_name(step: Step) -> str:
    # Template names share one namespace with the entrypoint DAG ("main"): the prefix keeps
    # a step called "main" apart from it.
    return f"step-{step.name}"


def step_template(step: Step, ctx: StepContext) -> m.Template:
    parameters: list[m.Parameter] = []
    artifacts = [_code_artifact(ctx.pipeline_name), _dependencies_artifact(ctx.pipeline_name)]
    env: list[m.EnvVar] = []
    spec_inputs: list[dict[str, str]] = []
    for step_input in step.inputs:
        wire = _wire(step, step_input, ctx)
        variable = INPUT_ENV_PREFIX + step_input.name
        if wire.kind in {"key", "from"}:
            path = f"{ROOT}/inputs/{step_input.name}"
            # archive none: a user's own .tar.gz must reach the function as it was sent,
            # not unpacked by Argo's executor.
            artifacts.append(
                m.Artifact(
                    name=step_input.name,
                    path=path,
                    optional=wire.optional or None,
                    archive=m.ArchiveStrategy(none=m.NoneStrategy()),
                )
            )
            spec_inputs.append(_spec(step_input, path=path))
        elif wire.kind == "secret":
            env.append(_secret_env(variable, wire.argument, ctx))
            # The user's variable, by its own name: the runner's errors speak of it, never of
            # the internal TENDER_INPUT_* variable that carries it.
            spec_inputs.append(
                _spec(step_input, env=variable, encoding="raw", variable=wire.argument)
            )
        else:
            parameters.append(m.Parameter(name=step_input.name))
            value = f"{{{{inputs.parameters.{step_input.name}}}}}"
            env.append(m.EnvVar(name=variable, value=value))
            spec_inputs.append(_spec(step_input, env=variable, encoding="json"))
    runner_spec = {
        "function_path": step.function_path,
        "function_name": step.function_name,
        "code_dir": CODE_DIR,
        "deps_dir": DEPS_DIR,
        "inputs": spec_inputs,
        "outputs": [_spec(o, path=_output_path(o)) for o in step.outputs],
        "max_value_bytes": MAX_VALUE_BYTES,
    }
    env = [
        m.EnvVar(name=RUNNER_ENV, value=json.dumps(runner_spec, separators=(",", ":"))),
        m.EnvVar(name=EXECUTION_ID_ENV, value="{{workflow.name}}"),
        *_sdk_environment(),
        *env,
    ]
    # Every environment variable, read when the step starts; `env` wins over it, as in Kubernetes.
    variables = m.EnvFromSource(secret_ref=m.SecretEnvSource(name=ctx.secret_name, optional=True))
    return m.Template(
        name=template_name(step),
        inputs=m.Inputs(parameters=parameters or None, artifacts=artifacts),
        outputs=_outputs(step, ctx),
        script=m.ScriptTemplate(
            image=ctx.image,
            command=list(PYTHON_COMMAND),
            source=ctx.runner_source,
            env=env,
            env_from=[variables],
        ),
    )


def step_task(step: Step, ctx: StepContext) -> m.DAGTask:
    parameters: list[m.Parameter] = []
    artifacts: list[m.Artifact] = []
    for step_input in step.inputs:
        wire = _wire(step, step_input, ctx)
        if wire.kind == "value":
            parameters.append(m.Parameter(name=step_input.name, value=wire.argument))
        elif wire.kind in {"key", "from"}:
            # Argo replaces a template's input artifact with the task's argument, keeping only
            # its path (workflow/common ProcessArgs): `optional` and `archive` go here too.
            artifacts.append(
                m.Artifact(
                    name=step_input.name,
                    s3=m.S3Artifact(key=wire.argument) if wire.kind == "key" else None,
                    from_=wire.argument if wire.kind == "from" else None,
                    optional=wire.optional or None,
                    archive=m.ArchiveStrategy(none=m.NoneStrategy()),
                )
            )
    arguments = None
    if parameters or artifacts:
        arguments = m.Arguments(parameters=parameters or None, artifacts=artifacts or None)
    return m.DAGTask(
        name=step.name,
        template=template_name(step),
        depends=" && ".join(ctx.plan.upstream(step)) or None,
        arguments=arguments,
    )


def _wire(step: Step, step_input: StepInput, ctx: StepContext) -> _Wire:
    feed = ctx.plan.feeds[(step.name, step_input.name)]
    is_file = step_input.data_type is DataType.FILE
    if isinstance(feed, StepOutputRef):
        kind = "artifacts" if is_file else "parameters"
        reference = f"{{{{tasks.{feed.step}.outputs.{kind}.{feed.output}}}}}"
        return _Wire("from" if is_file else "value", reference, optional=is_file)
    binding = ctx.bindings.inputs[feed]
    if isinstance(binding, FromSecret):
        return _Wire("secret", binding.variable)
    if isinstance(binding, StoredFile):
        return _Wire("key", binding.key)
    if isinstance(binding, FromParameter):
        reference = f"{{{{workflow.parameters.{binding.name}}}}}"
        optional = binding.value == ABSENT_FILE_KEY
        return _Wire("key" if is_file else "value", reference, optional=is_file and optional)
    return _Wire("value", binding.text)


def _outputs(step: Step, ctx: StepContext) -> m.Outputs | None:
    parameters: list[m.Parameter] = []
    artifacts: list[m.Artifact] = []
    for output in step.outputs:
        if output.data_type is DataType.FILE:
            ref = StepOutputRef(step.name, output.name)
            key = ctx.datastore_keys.get(ref) or step_output_key(step.name, output.name)
            artifacts.append(
                m.Artifact(
                    name=output.name,
                    path=_output_path(output),
                    optional=True,
                    s3=m.S3Artifact(key=key),
                    archive=m.ArchiveStrategy(none=m.NoneStrategy()),
                )
            )
        else:
            # Argo v4.0.7+ resolves a reference to a skipped producer's output to its default.
            parameters.append(
                m.Parameter(
                    name=output.name,
                    value_from=m.ValueFrom(path=_output_path(output), default="null"),
                )
            )
    if not parameters and not artifacts:
        return None
    return m.Outputs(parameters=parameters or None, artifacts=artifacts or None)


def _output_path(output: Output) -> str:
    return f"{ROOT}/outputs/{output.name}"


def _spec(io: StepInput | Output, **where: str) -> dict[str, str]:
    return {"name": io.name, "data_type": io.data_type.value, **where}


def _code_artifact(pipeline_name: str) -> m.Artifact:
    # No archive strategy: Argo's executor unpacks an input that is a tarball.
    return m.Artifact(name="code", path=CODE_DIR, s3=m.S3Artifact(key=code_key(pipeline_name)))


def _dependencies_artifact(pipeline_name: str) -> m.Artifact:
    return m.Artifact(
        name="dependencies",
        path=DEPS_DIR,
        optional=True,
        s3=m.S3Artifact(key=dependencies_key(pipeline_name)),
    )


def _sdk_environment() -> list[m.EnvVar]:
    """What ``CraftAiSdk()`` reads inside the step, from the execution's own Secret (not
    optional: on Argo the pod waits until the engine has created it)."""
    secret = execution_secret_name("{{workflow.name}}")
    return [
        m.EnvVar(
            name=name,
            value_from=m.EnvVarSource(secret_key_ref=m.SecretKeySelector(name=secret, key=key)),
        )
        for name, key in SDK_ENVIRONMENT.items()
    ]


def _secret_env(name: str, key: str, ctx: StepContext) -> m.EnvVar:
    return m.EnvVar(
        name=name,
        value_from=m.EnvVarSource(
            secret_key_ref=m.SecretKeySelector(name=ctx.secret_name, key=key)
        ),
    )
