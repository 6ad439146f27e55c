"""Calling an endpoint: check the call's inputs, store its files, submit, record.

Each call submits a Workflow from the endpoint's WorkflowTemplate with the call's values as
parameters (JSON text, ``compiler.values.encode_parameter``) and its files as storage keys; a
low-latency endpoint hands the same values and keys to its warm workers instead
(``gateway.lowlatency.calls``). Everything that can be refused is refused before anything is
written.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from starlette.datastructures import UploadFile
from starlette.requests import Request

from compiler import Deployment, Pipeline
from compiler.bindings import FromParameter, bind_deployment
from compiler.keys import run_input_key, run_inputs_prefix
from compiler.labels import DEPLOYMENT_LABEL, PIPELINE_LABEL, TRIGGER_LABEL
from compiler.models import Input
from compiler.values import MAX_VALUE_BYTES, DataType, encode_parameter, value_problem
from gateway.bodies import decode_json
from gateway.deployments.definitions import UP, deployment_of
from gateway.deployments.lifecycle import deployments_of, engine_object_name, pipeline_of
from gateway.errors import BadRequestError, ConflictError, PayloadTooLargeError
from gateway.execution_io import deployment_inputs, deployment_outputs
from gateway.lowlatency.calls import start_call
from gateway.services import Services
from gateway.store.records import DeploymentRecord, ExecutionRecord

__all__ = ["EndpointCall", "EndpointGates", "read_endpoint_call", "trigger_endpoint"]


@dataclass(frozen=True)
class EndpointCall:
    values: dict[str, Any]
    files: dict[str, BinaryIO]
    values_bytes: int  # the size of the values as they were sent


@dataclass(frozen=True)
class _EndpointInput:
    pipeline_input: Input
    required: bool


async def read_endpoint_call(request: Request) -> EndpointCall:
    """A JSON object of values, or a form whose file parts are files and whose text parts are
    JSON-encoded values (what the SDK sends), read as raw strings when they are not JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        values: dict[str, Any] = {}
        files: dict[str, BinaryIO] = {}
        size = 0
        for name, part in form.multi_items():
            if isinstance(part, UploadFile):
                files[name] = part.file
                continue
            size += len(part.encode())
            try:
                values[name] = json.loads(part)
            except (ValueError, RecursionError):
                values[name] = part
        return EndpointCall(values, files, size)
    body = await request.body()
    if not body.strip():
        return EndpointCall({}, {}, 0)
    decoded = decode_json(body, "the body")
    if not isinstance(decoded, dict):
        raise BadRequestError("the body must be a JSON object of inputs", name="InvalidInputs")
    return EndpointCall(decoded, {}, len(body))


@dataclass(frozen=True)
class _Prepared:
    """What every call of one version of an endpoint needs, parsed once."""

    pipeline: Pipeline
    deployment: Deployment
    declared: dict[str, _EndpointInput]


class EndpointGates:
    """Per app: one lock per deployment that runs one execution at a time, so that two calls
    cannot both see none running and both start one; and each endpoint's definitions parsed once
    per version (a deployment's name and last update: a changed mapping, or a pipeline deleted
    and created again, makes a new deployment version)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._prepared: dict[tuple[str, datetime], _Prepared] = {}

    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def prepared(self, services: Services, record: DeploymentRecord) -> _Prepared:
        key = (record.name, record.updated_at)
        found = self._prepared.get(key)
        if found is None:
            # A low-latency deployment's workers hold its pipeline: no query on the way to them.
            pipeline = services.low_latency.pipeline(record.name) or await pipeline_of(
                services, record
            )
            if pipeline is None:
                raise ConflictError(
                    f"the pipeline of {record.name!r} is gone", name="PipelineNotFound"
                )
            deployment = deployment_of(record)
            found = _Prepared(pipeline, deployment, _endpoint_inputs(pipeline, deployment))
            self._prepared = {k: v for k, v in self._prepared.items() if k[0] != record.name}
            self._prepared[key] = found
        return found


async def trigger_endpoint(
    services: Services, gates: EndpointGates, record: DeploymentRecord, call: EndpointCall
) -> ExecutionRecord:
    if record.execution_rule != "endpoint":
        raise BadRequestError(
            f"deployment {record.name!r} is not an endpoint", name="NotAnEndpoint"
        )
    if not record.is_enabled:
        raise ConflictError(f"deployment {record.name!r} is disabled", name="DeploymentDisabled")
    if record.status != UP:
        raise ConflictError(
            f"deployment {record.name!r} is {record.status}", name="DeploymentNotUp"
        )
    prepared = await gates.prepared(services, record)
    pipeline, deployment, declared = prepared.pipeline, prepared.deployment, prepared.declared
    _check_call(declared, call)
    if deployment.enable_parallel_executions is False:
        async with gates.lock(record.name):
            running = await services.in_store(
                deployments_of(services).running_execution_id, record.name
            )
            if running is not None:
                raise ConflictError(
                    f"deployment {record.name!r} runs one execution at a time, and "
                    f"{running!r} has not ended",
                    name="ExecutionInProgress",
                    additional_data={"execution_id": running},
                )
            return await _submit(
                services,
                record,
                pipeline=pipeline,
                deployment=deployment,
                declared=declared,
                call=call,
            )
    return await _submit(
        services, record, pipeline=pipeline, deployment=deployment, declared=declared, call=call
    )


def _endpoint_inputs(pipeline: Pipeline, deployment: Deployment) -> dict[str, _EndpointInput]:
    bindings = bind_deployment(pipeline, deployment)
    found = {}
    for input_name, binding in bindings.inputs.items():
        if isinstance(binding, FromParameter):
            declared = pipeline.input(input_name)
            assert declared is not None
            found[binding.name] = _EndpointInput(declared, binding.value is None)
    return found


def _check_call(declared: dict[str, _EndpointInput], call: EndpointCall) -> None:
    if call.values_bytes > MAX_VALUE_BYTES:
        raise PayloadTooLargeError(
            f"the non-file inputs take {call.values_bytes} bytes, over the 0.06 MB limit "
            f"({MAX_VALUE_BYTES} bytes): send large values as files",
            name="InputsTooLarge",
        )
    for name in [*call.values, *call.files]:
        if name not in declared:
            raise BadRequestError(f"the endpoint has no input {name!r}", name="UnknownInput")
    for name, endpoint_input in declared.items():
        data_type = endpoint_input.pipeline_input.data_type
        if name in call.files:
            if data_type is not DataType.FILE:
                raise _wrong_type(name, data_type, "a file")
        elif name in call.values:
            value = call.values[name]
            if data_type is DataType.FILE:
                raise _wrong_type(name, data_type, "a value: send it as a file part")
            if value is not None and (problem := value_problem(data_type, value)):
                raise BadRequestError(
                    f"input {name!r} {problem}",
                    name="InvalidInputType",
                    additional_data={"input": name},
                )
        elif endpoint_input.required:
            raise BadRequestError(
                f"input {name!r} is required", name="MissingInput", additional_data={"input": name}
            )


def _wrong_type(name: str, data_type: DataType, got: str) -> BadRequestError:
    return BadRequestError(
        f"input {name!r} expects a {data_type}, got {got}",
        name="InvalidInputType",
        additional_data={"input": name},
    )


async def _submit(
    services: Services,
    record: DeploymentRecord,
    *,
    pipeline: Pipeline,
    deployment: Deployment,
    declared: dict[str, _EndpointInput],
    call: EndpointCall,
) -> ExecutionRecord:
    upload_id = secrets.token_hex(8)
    keys = {name: run_input_key(upload_id, name) for name in call.files}
    parameters = {name: encode_parameter(value) for name, value in call.values.items()}
    parameters |= keys
    by_input = {e.pipeline_input.name: name for name, e in declared.items()}
    labels = {
        PIPELINE_LABEL: record.pipeline_name,
        DEPLOYMENT_LABEL: record.name,
        TRIGGER_LABEL: "endpoint",
    }
    given = {i: call.values[e] for i, e in by_input.items() if e in call.values}
    files = {i: keys[e] for i, e in by_input.items() if e in keys}
    try:
        for name, content in call.files.items():
            await services.storage.put_file(keys[name], content)
        if deployment.mode == "low_latency":
            return await start_call(
                services,
                record,
                pipeline=pipeline,
                deployment=deployment,
                given=given,
                files=files,
            )
        # Before the engine may start a step, so that no step starts before its execution.
        created_at = datetime.now(UTC)
        submitted = await services.engine.submit_from_template(
            engine_object_name(record), parameters, labels
        )
        name = submitted["metadata"]["name"]
        services.submitted(submitted)
        created = datetime.fromisoformat(submitted["metadata"]["creationTimestamp"])
        execution = ExecutionRecord(
            id=name,
            pipeline_name=record.pipeline_name,
            deployment_name=record.name,
            trigger="endpoint",
            # The platform's executions of a deployment are its creator's (craft-api.md 5.3).
            created_by=record.created_by,
            created_at=created_at,
            status="Pending",
            end_date=None,
            steps=[],
            inputs=deployment_inputs(pipeline, deployment, given, files),
            outputs=deployment_outputs(pipeline, deployment, name, created),
        )
        await services.record_execution(execution, pipeline)
    except BaseException:
        await services.storage.delete_prefix(run_inputs_prefix(upload_id))
        raise
    return execution
