"""Creating and deleting pipelines: the definition, the code archive and the environment.

Creation checks everything it can before it writes anything: the definition, the archive (or
the git clone), that each step's function exists. It then stores the code archive where the
engine reads it (``compiler.keys.code_key``), records the pipeline as ``creation_pending``, and
builds the pipeline's environment after answering; the build's end makes it ``ready`` or
``creation_failed``, with pip's output in its logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from compiler import Pipeline
from compiler.documents import raise_compile_error
from compiler.keys import code_key, execution_prefix, logs_prefix, pipeline_prefix
from gateway.archives import check_function_present, extract_code_archive, pack_code_archive
from gateway.builds import LogEntry
from gateway.dates import format_date
from gateway.engines.errors import ObjectNotFoundError
from gateway.environment_variables import variable_values
from gateway.errors import BadRequestError, ConflictError, NotFoundError, NotSupportedError
from gateway.git import clone_repository
from gateway.services import Services
from gateway.store.records import PipelineRecord

__all__ = ["create_pipeline", "delete_pipeline", "get_pipeline", "parse_pipeline", "pipeline_view"]

PENDING, READY, FAILED = "creation_pending", "ready", "creation_failed"
_log = logging.getLogger("tender.pipelines")


def parse_pipeline(body: dict[str, Any]) -> Pipeline:
    if "pipeline_template_name" in body:
        raise NotSupportedError("pipeline templates are not supported by this gateway")
    try:
        return Pipeline.model_validate(body)
    except ValidationError as exc:
        raise_compile_error(exc)


async def create_pipeline(
    services: Services, pipeline: Pipeline, step_file: IO[bytes] | None, created_by: str
) -> PipelineRecord:
    settings = services.settings
    if await services.in_store(services.pipelines.get, pipeline.pipeline_name) is not None:
        raise _taken(pipeline.pipeline_name)
    workspace = Path(tempfile.mkdtemp(prefix="pipeline-", dir=settings.work_dir))
    try:
        code_dir = workspace / "code"
        origin = await _fetch_code(services, pipeline, step_file, code_dir)
        archive = await asyncio.to_thread(pack_code_archive, code_dir)
        record = PipelineRecord(
            name=pipeline.pipeline_name,
            definition=pipeline.model_dump(
                mode="json", exclude={"container_config": {"repository_deploy_key"}}
            ),
            status=PENDING,
            origin=origin,
            created_by=created_by,
            created_at=datetime.now(UTC),
            build_logs=[],
        )
        key = code_key(pipeline.pipeline_name)
        await services.storage.put_bytes(key, archive)
        if not await services.in_store(services.pipelines.insert, record):
            await services.storage.delete(key)
            raise _taken(pipeline.pipeline_name)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, workspace, True)
        raise
    services.spawn(_build(services, pipeline, workspace))
    return record


def _taken(name: str) -> ConflictError:
    return ConflictError(f"a pipeline named {name!r} already exists", name="PipelineAlreadyExists")


async def _fetch_code(
    services: Services, pipeline: Pipeline, step_file: IO[bytes] | None, code_dir: Path
) -> str:
    config = pipeline.container_config
    if step_file is not None:
        await asyncio.to_thread(
            extract_code_archive, step_file, code_dir, max_bytes=services.settings.max_code_bytes
        )
        origin = "local"
    elif config.repository_url:
        await clone_repository(
            config.repository_url,
            config.repository_branch,
            config.repository_deploy_key,
            code_dir,
            allow_local=services.settings.allow_local_repositories,
            timeout_s=services.settings.git_timeout_s,
        )
        origin = "git_repository"
    else:
        raise BadRequestError(
            "send the code as a step_file archive, or give container_config.repository_url",
            name="MissingCode",
        )
    for step in pipeline.all_steps():
        await asyncio.to_thread(
            check_function_present, code_dir, step.function_path, step.function_name
        )
    requirements = config.requirements_path
    if requirements and not (code_dir / requirements).is_file():
        raise BadRequestError(
            f"the requirements file {requirements!r} is not in the pipeline's code",
            name="MissingRequirements",
        )
    return origin


async def _build(services: Services, pipeline: Pipeline, workspace: Path) -> None:
    try:
        result = await services.environments.build(
            pipeline,
            workspace / "code",
            await variable_values(services),  # for ${NAME} in the requirements
        )
        status, logs = READY if result.succeeded else FAILED, list(result.logs)
    except Exception:
        # Never leave a pipeline creation_pending for ever: the SDK would wait on it.
        _log.exception("building the environment of pipeline %r failed", pipeline.pipeline_name)
        status, logs = FAILED, [_log_line("the environment could not be built: internal error")]
    finally:
        await asyncio.to_thread(shutil.rmtree, workspace, True)
    await services.in_store(
        services.pipelines.finish_creation, pipeline.pipeline_name, status, logs
    )


def _log_line(message: str) -> LogEntry:
    return LogEntry(timestamp=format_date(datetime.now(UTC)) or "", message=message)


async def get_pipeline(services: Services, name: str, *, wait: bool = False) -> PipelineRecord:
    """The pipeline; with ``wait``, once its creation ended or the long-poll time passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.long_poll_s
    while True:
        record: PipelineRecord | None = await services.in_store(services.pipelines.get, name)
        if record is None:
            raise NotFoundError(f"pipeline {name!r} not found", name="PipelineNotFound")
        if not wait or record.status != PENDING or loop.time() >= deadline:
            return record
        await asyncio.sleep(0.05)


async def delete_pipeline(services: Services, name: str) -> None:
    """The pipeline, its executions (and their workflows and files), code and environment."""
    await get_pipeline(services, name)
    for execution_id in await services.in_store(services.executions.ids_of_pipeline, name):
        await delete_execution_objects(services, execution_id)
    await services.in_store(services.pipelines.delete, name)
    await services.storage.delete_prefix(pipeline_prefix(name))
    await services.environments.remove(name)


async def delete_execution_objects(services: Services, execution_id: str) -> None:
    """What an execution left in the engine and in storage; its record goes with it."""
    record = await services.in_store(services.executions.get, execution_id)
    with contextlib.suppress(ObjectNotFoundError):
        await services.engine.delete_workflow(execution_id)
    await services.storage.delete_prefix(execution_prefix(execution_id))
    await services.storage.delete_prefix(logs_prefix(execution_id))
    for item in [] if record is None else record.inputs:
        if item.get("mapping_type") == "run" and "key" in item:
            await services.storage.delete(item["key"])
    services.low_latency.forget(execution_id)
    await services.in_store(services.low_latency.log_lines.delete_execution, execution_id)
    await services.in_store(services.executions.delete, execution_id)


def pipeline_view(record: PipelineRecord) -> dict[str, Any]:
    """The pipeline as ``get_pipeline`` returns it (craft-api.md section 5.2)."""
    parameters = dict(record.definition)
    if not parameters.get("steps"):
        parameters.pop("steps", None)
    return {
        "parameters": parameters,
        "creation_info": {
            "created_at": format_date(record.created_at),
            "created_by": record.created_by,
            "commit_id": None,
            "status": record.status,
            "origin": record.origin,
            "pipeline_template": None,
        },
    }
