"""Creating, reading, changing and deleting deployments, and their objects in the engine.

An endpoint is a WorkflowTemplate, a periodic deployment a CronWorkflow (suspended while
disabled). Everything that can be refused is refused before anything is written. A deployment
of a pipeline still being created is recorded ``creation_pending``, and its engine object is
created once the pipeline is ready (``up``) or not at all if it fails (``creation_failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from compiler import CompileError, Deployment, InputSource, OutputDestination, Pipeline
from compiler import compile_deployment as compile_manifest
from compiler.bindings import bind_deployment
from compiler.documents import raise_compile_error
from compiler.manifests import Manifest
from compiler.naming import CRON_WORKFLOW_NAME_MAX, shorten
from gateway.deployments.definitions import (
    DISABLED,
    FAILED,
    PENDING,
    UP,
    check_supported_mappings,
    deployment_of,
)
from gateway.deployments.tokens import hash_endpoint_token, new_endpoint_token, read_user_token
from gateway.engines.errors import ObjectNotFoundError
from gateway.environment_variables import compile_options
from gateway.errors import BadRequestError, ConflictError, NotFoundError, NotSupportedError
from gateway.lowlatency.deployments import (
    fail_interrupted_calls,
    is_low_latency,
    start_workers,
    stop_workers,
)
from gateway.lowlatency.errors import WorkerStartError
from gateway.lowlatency.rules import check_pipeline
from gateway.pipelines import FAILED as PIPELINE_FAILED
from gateway.pipelines import READY as PIPELINE_READY
from gateway.pipelines import get_pipeline
from gateway.services import Services
from gateway.store import DeploymentRecord, DeploymentRepository

__all__ = [
    "create_deployment",
    "delete_deployment",
    "delete_deployments_of_pipeline",
    "deployments_of",
    "get_deployment",
    "pipeline_of",
    "restore_low_latency",
    "rotate_endpoint_token",
    "schedule_error",
    "update_deployment",
]

_POLL_S = 0.05


def deployments_of(services: Services) -> DeploymentRepository:
    return DeploymentRepository(services.db)


async def create_deployment(
    services: Services, deployment: Deployment, created_by: str
) -> DeploymentRecord:
    assert deployment.pipeline_name is not None
    if deployment.mode == "low_latency" and services.settings.engine == "argo":
        # Warm workers on a cluster (a Deployment per endpoint) are designed, not built.
        raise NotSupportedError(
            "mode low_latency is not supported on Argo (TENDER_ENGINE=argo): deploy the "
            "endpoint in mode elastic",
            name="NotSupported",
        )
    stored = await get_pipeline(services, deployment.pipeline_name)
    if stored.status == PIPELINE_FAILED:
        raise ConflictError(
            f"pipeline {stored.name!r} failed to be created: it cannot be deployed",
            name="PipelineNotReady",
        )
    pipeline = Pipeline.model_validate(stored.definition)
    manifest = await _engine_object(services, pipeline, deployment)
    token = None
    if deployment.execution_rule == "endpoint":
        given = deployment.endpoint_token
        token = new_endpoint_token() if given is None else read_user_token(given.get_secret_value())
    now = datetime.now(UTC)
    record = DeploymentRecord(
        name=deployment.deployment_name,
        pipeline_name=pipeline.pipeline_name,
        execution_rule=deployment.execution_rule,
        definition=deployment.model_dump(
            mode="json", exclude={"endpoint_token"}, exclude_unset=True
        ),
        endpoint_url_path=deployment.endpoint_url_path,
        endpoint_token=token,
        endpoint_token_hash=None if token is None else hash_endpoint_token(token),
        status=PENDING,
        is_enabled=True,
        created_by=created_by,
        created_at=now,
        updated_by=created_by,
        updated_at=now,
    )
    repository = deployments_of(services)
    if not await services.in_store(repository.insert, record):
        raise ConflictError(
            f"deployment name {record.name!r} or endpoint path {record.endpoint_url_path!r} "
            "is taken",
            name="DeploymentAlreadyExists",
        )
    if stored.status != PIPELINE_READY or manifest is None:
        # Workers take as long as the function's import: the SDK waits for `up`.
        services.spawn(_publish_when_ready(services, record, manifest))
        return record
    try:
        await _create_object(services, record, manifest)
    except BaseException:
        await services.in_store(repository.delete, record.name)
        raise
    return await _set_status(services, record, UP)


async def _engine_object(
    services: Services, pipeline: Pipeline, deployment: Deployment
) -> Manifest | None:
    """The WorkflowTemplate or CronWorkflow; None for a low-latency deployment, which has
    workers instead (its mappings are checked all the same)."""
    if deployment.mode != "low_latency":
        return compile_manifest(pipeline, deployment, compile_options(services))
    check_pipeline(pipeline)
    bind_deployment(pipeline, deployment)
    return None


async def _publish_when_ready(
    services: Services, record: DeploymentRecord, manifest: Manifest | None
) -> None:
    while True:
        pipeline = await services.in_store(services.pipelines.get, record.pipeline_name)
        if pipeline is None or pipeline.status != "creation_pending":
            break
        await asyncio.sleep(_POLL_S)
    if pipeline is None or pipeline.status != PIPELINE_READY:
        await _set_status(services, record, FAILED)
        return
    if manifest is None:
        await _start_low_latency(services, record)
        return
    try:
        await _create_object(services, record, manifest)
    except Exception:
        await _set_status(services, record, FAILED)
        raise
    await _set_status(services, record, UP)


async def _start_low_latency(services: Services, record: DeploymentRecord) -> None:
    """``up`` once the workers are ready; ``creation_failed`` if they cannot start (why is in
    the deployment's logs)."""
    try:
        await start_workers(services, record)
    except WorkerStartError:
        await _set_status(services, record, FAILED)
    except Exception:
        await _set_status(services, record, FAILED)
        raise
    else:
        await _set_status(services, record, UP)


async def restore_low_latency(services: Services) -> None:
    """At gateway start: calls left running end in Error, enabled low-latency deployments get
    their workers again (``creation_pending`` until they are ready)."""
    await fail_interrupted_calls(services)
    for record in await services.in_store(deployments_of(services).list_all):
        if is_low_latency(record) and record.is_enabled and record.status != FAILED:
            await _start_low_latency(services, await _set_status(services, record, PENDING))


async def _create_object(services: Services, record: DeploymentRecord, manifest: Manifest) -> None:
    if record.execution_rule == "endpoint":
        await services.engine.create_workflow_template(manifest)
    else:
        await services.engine.create_cron_workflow(manifest)


async def _set_status(
    services: Services, record: DeploymentRecord, status: str
) -> DeploymentRecord:
    updated = await services.in_store(deployments_of(services).update, record.name, status=status)
    return replace(record, status=status) if updated is None else updated


def engine_object_name(record: DeploymentRecord) -> str:
    """The WorkflowTemplate's or CronWorkflow's name, as ``compile_deployment`` gives it."""
    if record.execution_rule == "endpoint":
        return record.name
    return shorten(record.name, CRON_WORKFLOW_NAME_MAX)


async def get_deployment(services: Services, name: str, *, wait: bool = False) -> DeploymentRecord:
    """The deployment; with ``wait``, once its creation ended or the long-poll time passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.long_poll_s
    repository = deployments_of(services)
    while True:
        record: DeploymentRecord | None = await services.in_store(repository.get, name)
        if record is None:
            raise NotFoundError(f"deployment {name!r} not found", name="DeploymentNotFound")
        if not wait or record.status != PENDING or loop.time() >= deadline:
            return record
        await asyncio.sleep(_POLL_S)


async def schedule_error(services: Services, record: DeploymentRecord) -> str | None:
    """Why a periodic deployment's schedule failed last, from its CronWorkflow's conditions
    (Argo's ``SpecError`` and ``SubmissionError``, which both engines set); None while it works."""
    if record.execution_rule != "periodic" or record.status not in (UP, DISABLED):
        return None
    try:
        cron = await services.engine.get_cron_workflow(engine_object_name(record))
    except ObjectNotFoundError:
        return None
    for condition in (cron.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "SpecError":
            return str(condition.get("message"))
        if condition.get("type") == "SubmissionError":
            return f"the last scheduled execution could not start: {condition.get('message')}"
    return None


async def pipeline_of(services: Services, record: DeploymentRecord) -> Pipeline | None:
    stored = await services.in_store(services.pipelines.get, record.pipeline_name)
    return None if stored is None else Pipeline.model_validate(stored.definition)


async def update_deployment(
    services: Services, name: str, body: Any, updated_by: str
) -> DeploymentRecord:
    """``is_enabled``, ``schedule``, and the values (never the kinds) of mappings."""
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object", name="InvalidBody")
    unknown = set(body) - {"is_enabled", "schedule", "inputs_mapping", "outputs_mapping"}
    if unknown:
        raise BadRequestError(
            f"only is_enabled, schedule, inputs_mapping and outputs_mapping can change, "
            f"not {', '.join(sorted(unknown))}",
            name="InvalidUpdate",
        )
    record = await get_deployment(services, name)
    if record.status in (PENDING, FAILED):
        raise ConflictError(
            f"deployment {name!r} is {record.status}: it cannot change", name="DeploymentNotUp"
        )
    deployment = _changed(deployment_of(record), body)
    is_enabled = body.get("is_enabled", record.is_enabled)
    if not isinstance(is_enabled, bool):
        raise BadRequestError("is_enabled must be true or false", name="InvalidUpdate")
    if deployment != deployment_of(record):
        await _republish(services, record, deployment, is_enabled)
    status = await _switch(services, record, is_enabled)
    updated: DeploymentRecord | None = await services.in_store(
        deployments_of(services).update,
        name,
        definition=deployment.model_dump(
            mode="json", exclude={"endpoint_token"}, exclude_unset=True
        ),
        is_enabled=is_enabled,
        status=status,
        updated_by=updated_by,
        updated_at=datetime.now(UTC),
    )
    if updated is None:
        raise NotFoundError(f"deployment {name!r} not found", name="DeploymentNotFound")
    if status == PENDING:
        services.spawn(_start_low_latency(services, updated))
    return updated


async def _republish(
    services: Services, record: DeploymentRecord, deployment: Deployment, is_enabled: bool
) -> None:
    """The engine object of a changed definition. A low-latency deployment has none: each
    call reads the mappings from the record, so the next call has the new ones."""
    pipeline = await pipeline_of(services, record)
    if pipeline is None:
        raise ConflictError(f"the pipeline of {record.name!r} is gone", name="PipelineNotFound")
    manifest = await _engine_object(services, pipeline, deployment)
    if manifest is None:
        return
    if record.execution_rule == "endpoint":
        await services.engine.update_workflow_template(manifest)
    else:
        manifest["spec"]["suspend"] = not is_enabled
        await services.engine.update_cron_workflow(manifest)


async def _switch(services: Services, record: DeploymentRecord, is_enabled: bool) -> str:
    """Suspend or resume a CronWorkflow, stop a low-latency deployment's workers or have them
    started again (``creation_pending`` until they are ready); the status this leads to."""
    status = UP if is_enabled else DISABLED
    if is_enabled == record.is_enabled:
        return status
    if is_low_latency(record):
        if is_enabled:
            return PENDING
        await stop_workers(services, record.name, "the deployment was disabled")
    elif record.execution_rule == "periodic":
        cron = engine_object_name(record)
        if is_enabled:
            await services.engine.resume_cron_workflow(cron)
        else:
            await services.engine.suspend_cron_workflow(cron)
    return status


def _changed(deployment: Deployment, body: dict[str, Any]) -> Deployment:
    changes: dict[str, Any] = {}
    if body.get("schedule") is not None:
        if deployment.execution_rule != "periodic":
            raise BadRequestError(
                "schedule only goes with periodic deployments", name="InvalidUpdate"
            )
        changes["schedule"] = body["schedule"]
    if body.get("inputs_mapping") is not None:
        changes["inputs_mapping"] = _new_values(
            deployment.inputs_mapping, body["inputs_mapping"], InputSource, "pipeline_input_name"
        )
    if body.get("outputs_mapping") is not None:
        changes["outputs_mapping"] = _new_values(
            deployment.outputs_mapping,
            body["outputs_mapping"],
            OutputDestination,
            "pipeline_output_name",
        )
    if not changes:
        return deployment
    try:
        changed = Deployment.model_validate(
            {**deployment.model_dump(exclude_unset=True), **changes}
        )
    except ValidationError as exc:
        raise_compile_error(exc, "deployment")
    check_supported_mappings(changed)
    return changed


def _new_values(
    current: list[Any], given: Any, model: type[InputSource | OutputDestination], key: str
) -> list[Any]:
    """The mappings with the given ones' values; a mapping's kind cannot change."""
    if not isinstance(given, list):
        raise BadRequestError(f"{key.split('_')[1]}s_mapping must be a list", name="InvalidUpdate")
    by_name = {getattr(m, key): m for m in current}
    for index, item in enumerate(given):
        try:
            new = model.model_validate(item)
        except ValidationError as exc:
            raise_compile_error(exc, f"mapping[{index}]")
        name = getattr(new, key)
        old = by_name.get(name)
        if old is None or old.kind != new.kind:
            raise CompileError(
                f"mapping[{index}]",
                "mapping_kind",
                f"{name!r} is not mapped with {new.kind}: only the values of existing "
                "mappings can change, not their kinds",
            )
        by_name[name] = new
    return list(by_name.values())


async def rotate_endpoint_token(services: Services, name: str, given: str | None) -> str:
    """A new token for the endpoint; the old one stops working with this call."""
    record = await get_deployment(services, name)
    if record.execution_rule != "endpoint":
        raise BadRequestError(f"deployment {name!r} is not an endpoint", name="NotAnEndpoint")
    token = new_endpoint_token() if given is None else read_user_token(given)
    await services.in_store(
        deployments_of(services).update,
        name,
        endpoint_token=token,
        endpoint_token_hash=hash_endpoint_token(token),
        updated_at=datetime.now(UTC),
    )
    return token


async def delete_deployment(services: Services, name: str) -> DeploymentRecord:
    """The deployment and its engine object; its executions stay, as the platform keeps them."""
    record = await get_deployment(services, name)
    if is_low_latency(record):
        await stop_workers(services, name, "the deployment was deleted")
        await services.in_store(services.low_latency.log_lines.forget_deployment, name)
    with contextlib.suppress(ObjectNotFoundError):
        if is_low_latency(record):
            pass
        elif record.execution_rule == "endpoint":
            await services.engine.delete_workflow_template(engine_object_name(record))
        else:
            await services.engine.delete_cron_workflow(engine_object_name(record))
    await services.in_store(deployments_of(services).delete, name)
    return record


async def delete_deployments_of_pipeline(
    services: Services, pipeline_name: str, *, force: bool
) -> list[dict[str, str]]:
    """Before a pipeline goes: its deployments go too with ``force``, else 409 if it has any."""
    await get_pipeline(services, pipeline_name)
    repository = deployments_of(services)
    names = await services.in_store(repository.names_of_pipeline, pipeline_name)
    if names and not force:
        raise ConflictError(
            f"pipeline {pipeline_name!r} has deployments ({', '.join(sorted(names))}): delete "
            "them first, or pass force_deployments_deletion=true",
            name="PipelineHasDeployments",
            additional_data={"deployments": sorted(names)},
        )
    removed = []
    for name in names:
        record = await delete_deployment(services, name)
        removed.append({"name": record.name, "execution_rule": record.execution_rule})
    return removed
