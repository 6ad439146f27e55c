"""Running a pipeline now (``run_pipeline``): check, store the files, compile, submit, record.

Everything that can be refused is refused before anything is written. Uploaded files go to
``inputs/<upload id>/<input>``; if the submission fails they are removed again.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar

from pydantic import TypeAdapter, ValidationError

from compiler import InputSource, OutputDestination, Pipeline, Run, compile_run
from compiler.documents import raise_compile_error
from compiler.keys import run_input_key, run_inputs_prefix
from compiler.values import MAX_VALUE_BYTES
from gateway.bodies import decode_json
from gateway.environment_variables import compile_options
from gateway.errors import BadRequestError, ConflictError, PayloadTooLargeError
from gateway.execution_io import run_inputs, run_outputs
from gateway.pipelines import READY, get_pipeline
from gateway.services import Services
from gateway.store.records import ExecutionRecord

__all__ = ["start_run"]

T = TypeVar("T")
_INPUT_SOURCES = TypeAdapter(list[InputSource])
_OUTPUT_DESTINATIONS = TypeAdapter(list[OutputDestination])


async def start_run(
    services: Services,
    pipeline_name: str,
    fields: Mapping[str, str],
    files: Mapping[str, BinaryIO],
    created_by: str,
) -> ExecutionRecord:
    stored = await get_pipeline(services, pipeline_name)
    if stored.status != READY:
        raise ConflictError(
            f"pipeline {pipeline_name!r} is {stored.status}, not ready", name="PipelineNotReady"
        )
    pipeline = Pipeline.model_validate(stored.definition)
    upload_id = secrets.token_hex(8)
    run = _parse_run(fields, {name: run_input_key(upload_id, name) for name in files})
    # Every variable by name: an execution sees them all, resolved when each step starts.
    manifest = compile_run(pipeline, run, compile_options(services))
    try:
        for name, content in files.items():
            await services.storage.put_file(run.files[name], content)
        # Before the engine may start a step, so that no step starts before its execution.
        created_at = datetime.now(UTC)
        submitted = await services.engine.submit_workflow(manifest)
        name = submitted["metadata"]["name"]
        services.submitted(submitted)
        created = datetime.fromisoformat(submitted["metadata"]["creationTimestamp"])
        record = ExecutionRecord(
            id=name,
            pipeline_name=pipeline_name,
            deployment_name=None,
            trigger="run",
            created_by=created_by,
            created_at=created_at,
            status="Pending",
            end_date=None,
            steps=[],
            inputs=run_inputs(pipeline, run),
            outputs=run_outputs(pipeline, list(run.outputs_mapping), name, created),
        )
        await services.record_execution(record, pipeline)
    except BaseException:
        await services.storage.delete_prefix(run_inputs_prefix(upload_id))
        raise
    return record


def _parse_run(fields: Mapping[str, str], files: dict[str, str]) -> Run:
    size = len(fields.get("json_inputs", "").encode())
    if size > MAX_VALUE_BYTES:
        raise PayloadTooLargeError(
            f"the non-file inputs take {size} bytes, over the 0.06 MB limit "
            f"({MAX_VALUE_BYTES} bytes): send large values as files",
            name="InputsTooLarge",
        )
    inputs = _json_field(fields, "json_inputs", "{}")
    if not isinstance(inputs, dict):
        raise BadRequestError("json_inputs must be a JSON object", name="InvalidInputs")
    inputs_mapping = _validated(_INPUT_SOURCES, fields, "inputs_mapping")
    outputs_mapping = _validated(_OUTPUT_DESTINATIONS, fields, "outputs_mapping")
    return Run(
        inputs=inputs, files=files, inputs_mapping=inputs_mapping, outputs_mapping=outputs_mapping
    )


def _validated(adapter: TypeAdapter[list[T]], fields: Mapping[str, str], name: str) -> list[T]:
    try:
        return adapter.validate_python(_json_field(fields, name, "[]"))
    except ValidationError as exc:
        raise_compile_error(exc, name)


def _json_field(fields: Mapping[str, str], name: str, default: str) -> Any:
    return decode_json(fields.get(name) or default, name)
