"""Pipelines with their mappings become Argo manifests, built with hera's typed models.

hera's generated models (``hera.workflows.models``) are Argo's own OpenAPI types; building
them and calling ``model_dump`` is what hera's ``Workflow.to_dict`` does after its own
conversion step, which we skip (see bench/README.md for what it costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hera.workflows import models as m

from compiler.bindings import Bindings, Exposed, ToDatastore, bind_deployment, bind_run
from compiler.graph import Plan, StepOutputRef, plan_pipeline
from compiler.keys import with_key_prefix
from compiler.labels import (
    DEPLOYMENT_LABEL,
    DESCRIPTION_ANNOTATION,
    PIPELINE_LABEL,
    TITLE_ANNOTATION,
    TRIGGER_LABEL,
)
from compiler.models import Deployment, Pipeline, Run
from compiler.naming import CRON_WORKFLOW_NAME_MAX, GENERATE_NAME_MAX, shorten
from compiler.schedule import check_schedule
from compiler.steps import StepContext, step_task, step_template
from compiler.values import DataType
from templates import runner_source

__all__ = ["API_VERSION", "CompileOptions", "Manifest", "compile_deployment", "compile_run"]

Manifest = dict[str, Any]
API_VERSION = "argoproj.io/v1alpha1"
ENTRYPOINT = "main"
# The step runner's source travels once, as a workflow parameter that every step template's
# `source` reads: a copy per step would swell a 500-step Workflow past etcd's 1 MB object limit.
# Parameter names from the SDK are identifiers, so a name with "-" never collides with them.
RUNNER_PARAMETER = "tender-runner"
# A missed schedule tick may still start this late (the controller was down, say).
STARTING_DEADLINE_S = 60


@dataclass(frozen=True)
class CompileOptions:
    """What the compiler needs to know about the installation, beyond the definitions."""

    # The Secret that holds the environment variables every execution sees (every key of it,
    # as they are when a step starts: a variable added later reaches deployed pipelines too).
    secret_name: str = "tender-environment"  # noqa: S105 - a Secret's name, not a value
    default_image: str = "python:3.12-slim"
    # Written before every artifact key (compiler.keys): the gateway's TENDER_S3_PREFIX.
    key_prefix: str = ""


def compile_run(pipeline: Pipeline, run: Run, options: CompileOptions | None = None) -> Manifest:
    """A ``Workflow`` for one execution: its name (``generateName``) is the execution id."""
    options = options or CompileOptions()
    plan = plan_pipeline(pipeline)
    bindings = bind_run(pipeline, run)
    labels = {PIPELINE_LABEL: pipeline.pipeline_name, TRIGGER_LABEL: "run"}
    workflow = m.Workflow(
        api_version=API_VERSION,
        kind="Workflow",
        metadata=m.ObjectMeta(
            generate_name=shorten(pipeline.pipeline_name, GENERATE_NAME_MAX - 1) + "-",
            labels=labels,
            annotations=_annotations(pipeline.pipeline_name, pipeline.description),
        ),
        spec=_workflow_spec(pipeline, plan, bindings, options, run.execution_timeout_s),
    )
    return _dump(workflow, options)


def compile_deployment(
    pipeline: Pipeline, deployment: Deployment, options: CompileOptions | None = None
) -> Manifest:
    """A ``WorkflowTemplate`` for an endpoint, a ``CronWorkflow`` for a periodic deployment."""
    options = options or CompileOptions()
    plan = plan_pipeline(pipeline)
    if deployment.execution_rule == "periodic":
        assert deployment.schedule is not None
        check_schedule(deployment.schedule, "deployment.schedule")
    bindings = bind_deployment(pipeline, deployment)
    spec = _workflow_spec(pipeline, plan, bindings, options, deployment.execution_timeout_s)
    labels = {
        PIPELINE_LABEL: pipeline.pipeline_name,
        DEPLOYMENT_LABEL: deployment.deployment_name,
        TRIGGER_LABEL: deployment.execution_rule,
    }
    annotations = _annotations(
        deployment.deployment_name, deployment.description or pipeline.description
    )
    # Children carry these labels: Argo stamps spec.workflowMetadata on every Workflow it runs.
    spec.workflow_metadata = m.WorkflowMetadata(labels=labels, annotations=annotations)
    if deployment.execution_rule == "endpoint":
        template = m.WorkflowTemplate(
            api_version=API_VERSION,
            kind="WorkflowTemplate",
            metadata=m.ObjectMeta(
                name=deployment.deployment_name, labels=labels, annotations=annotations
            ),
            spec=spec,
        )
        return _dump(template, options)
    assert deployment.schedule is not None
    cron = m.CronWorkflow(
        api_version=API_VERSION,
        kind="CronWorkflow",
        metadata=m.ObjectMeta(
            name=shorten(deployment.deployment_name, CRON_WORKFLOW_NAME_MAX),
            labels=labels,
            annotations=annotations,
        ),
        spec=m.CronWorkflowSpec(
            schedules=[deployment.schedule],
            timezone="UTC",
            concurrency_policy="Allow" if deployment.enable_parallel_executions else "Forbid",
            starting_deadline_seconds=STARTING_DEADLINE_S,
            suspend=False,
            # Of a CronWorkflow's own labels Argo propagates none to its children but these.
            workflow_metadata=m.ObjectMeta(labels=labels, annotations=annotations),
            workflow_spec=spec,
        ),
    )
    return _dump(cron, options)


def _workflow_spec(
    pipeline: Pipeline, plan: Plan, bindings: Bindings, options: CompileOptions, timeout: int | None
) -> m.WorkflowSpec:
    ctx = StepContext(
        pipeline_name=pipeline.pipeline_name,
        plan=plan,
        bindings=bindings,
        image=pipeline.container_config.language or options.default_image,
        runner_source=f"{{{{workflow.parameters.{RUNNER_PARAMETER}}}}}",
        secret_name=options.secret_name,
        datastore_keys={
            plan.outputs[name]: binding.key
            for name, binding in bindings.outputs.items()
            if isinstance(binding, ToDatastore)
        },
    )
    parameters = [m.Parameter(name=p.name, value=p.value) for p in bindings.parameters()]
    parameters.append(m.Parameter(name=RUNNER_PARAMETER, value=runner_source()))
    return m.WorkflowSpec(
        entrypoint=ENTRYPOINT,
        arguments=m.Arguments(parameters=parameters),
        templates=[
            _entrypoint(pipeline, plan, bindings, ctx),
            *(step_template(step, ctx) for step in plan.steps),
        ],
        active_deadline_seconds=timeout,
    )


def _entrypoint(pipeline: Pipeline, plan: Plan, bindings: Bindings, ctx: StepContext) -> m.Template:
    """The DAG of the steps; its outputs are the pipeline's, read back from the root node."""
    parameters: list[m.Parameter] = []
    artifacts: list[m.Artifact] = []
    for output in pipeline.outputs:
        if not isinstance(bindings.outputs[output.name], Exposed):
            continue
        ref: StepOutputRef = plan.outputs[output.name]
        if output.data_type is DataType.FILE:
            artifacts.append(
                m.Artifact(
                    name=output.name,
                    from_=f"{{{{tasks.{ref.step}.outputs.artifacts.{ref.output}}}}}",
                    optional=True,
                )
            )
        else:
            value = f"{{{{tasks.{ref.step}.outputs.parameters.{ref.output}}}}}"
            parameters.append(
                m.Parameter(name=output.name, value_from=m.ValueFrom(parameter=value))
            )
    outputs = None
    if parameters or artifacts:
        outputs = m.Outputs(parameters=parameters or None, artifacts=artifacts or None)
    return m.Template(
        name=ENTRYPOINT,
        dag=m.DAGTemplate(tasks=[step_task(step, ctx) for step in plan.steps]),
        outputs=outputs,
    )


def _annotations(title: str, description: str | None) -> dict[str, str]:
    annotations = {TITLE_ANNOTATION: title}
    if description:
        annotations[DESCRIPTION_ANNOTATION] = description
    return annotations


def _dump(
    model: m.Workflow | m.WorkflowTemplate | m.CronWorkflow, options: CompileOptions
) -> Manifest:
    dumped: Manifest = model.model_dump(mode="json", exclude_none=True, by_alias=True)
    with_key_prefix(dumped, options.key_prefix)
    return dumped
