"""A call to a low-latency deployment: an execution served by a warm worker, not a Workflow.

The call has been checked as any endpoint call is (``deployments.triggers``). It is recorded
``Running`` with the inputs and outputs an elastic execution records (``execution_io``), and sent
to a worker with its inputs resolved from the deployment's bindings (``compiler.bindings``, read
per call: a changed mapping applies to the next call). At its end the file outputs go to storage
under the keys the record names, the values into the record, and the record and the call's log
lines are stored in one transaction. A failure (the function raised or returned wrong outputs,
its worker ended, it ran past ``execution_timeout_s``, an input could not be read) ends that
execution only; its last stderr line is a ``tender: <why>`` line, which the caller's error
message quotes (``gateway.failures``), as for a step.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler import Deployment, Pipeline
from compiler.bindings import Fixed, FromParameter, FromSecret, StoredFile, bind_deployment
from compiler.execution_secret import SDK_ENVIRONMENT
from compiler.keys import ABSENT_FILE_KEY
from compiler.steps import EXECUTION_ID_ENV, INPUT_ENV_PREFIX
from compiler.values import DataType, encode_parameter
from gateway.engines.local.objects import generate_name
from gateway.errors import ConflictError, TooManyRequestsError
from gateway.execution_io import deployment_inputs, deployment_outputs
from gateway.executions import step_record, with_output_values
from gateway.lowlatency.errors import WorkerError, WorkerLostError, WorkerStartError
from gateway.lowlatency.pods import CallOutcome, WorkerCall
from gateway.services import Services
from gateway.step_tokens import execution_secret_data
from gateway.storage.errors import ObjectNotFoundError
from gateway.store.records import (
    LOW_LATENCY_TRIGGER,
    DeploymentRecord,
    ExecutionRecord,
    WorkerLogLine,
)

__all__ = ["admit_call", "start_call"]

_log = logging.getLogger("tender.lowlatency")
_ID_ATTEMPTS = 10


class _InputError(Exception):
    """An input the call cannot be given (a missing variable or datastore file)."""


@dataclass(frozen=True)
class _Call:
    execution: ExecutionRecord
    deployment_record: DeploymentRecord
    pipeline: Pipeline
    deployment: Deployment
    given: dict[str, Any]  # values by pipeline input name
    files: dict[str, str]  # storage keys of the call's files, by pipeline input name


def admit_call(services: Services, record: DeploymentRecord) -> None:
    """Refuse a call beyond the deployment's bound on calls in progress in this gateway, before
    any of its work is done (calls wait in memory for a worker's free slot: the bound keeps a
    burst from growing the gateway without end). Calls admitted at the same moment may pass it
    by the few that are between this check and their start."""
    limit = services.settings.low_latency_max_calls
    if services.low_latency.calls_in_progress(record.name) >= limit:
        raise TooManyRequestsError(
            f"deployment {record.name!r} already has {limit} calls in progress, its limit "
            "(TENDER_LOW_LATENCY_MAX_CALLS): try again when some have ended",
            name="TooManyCalls",
            additional_data={"deployment": record.name, "limit": limit},
        )


async def start_call(
    services: Services,
    record: DeploymentRecord,
    *,
    pipeline: Pipeline,
    deployment: Deployment,
    given: dict[str, Any],
    files: dict[str, str],
) -> ExecutionRecord:
    """Record the call's execution and hand it to a worker; its end is stored later."""
    for _ in range(_ID_ATTEMPTS):
        execution = _new_execution(record, pipeline, deployment, given, files)
        if await services.in_store(services.executions.insert_new, execution):
            break
    else:
        raise ConflictError(
            f"no free execution id for {record.name!r} after {_ID_ATTEMPTS} tries",
            name="ExecutionIdTaken",
        )
    services.low_latency.begin_call(execution)
    call = _Call(execution, record, pipeline, deployment, given, files)
    services.spawn(_run(services, call))
    return execution


def _new_execution(
    record: DeploymentRecord,
    pipeline: Pipeline,
    deployment: Deployment,
    given: dict[str, Any],
    files: dict[str, str],
) -> ExecutionRecord:
    """Named as the API server names a Workflow from ``generateName``: five random
    characters, so that ids may collide and the insert is tried again."""
    execution_id = generate_name(f"{record.name}-")
    created = datetime.now(UTC)
    step = pipeline.all_steps()[0]
    return ExecutionRecord(
        id=execution_id,
        pipeline_name=record.pipeline_name,
        deployment_name=record.name,
        trigger=LOW_LATENCY_TRIGGER,
        created_by=record.created_by,
        created_at=created,
        status="Running",
        end_date=None,
        steps=[step_record(step.name, "Running", created, None, pipeline)],
        inputs=deployment_inputs(pipeline, deployment, given, files),
        outputs=deployment_outputs(pipeline, deployment, execution_id, created),
    )


async def _run(services: Services, call: _Call) -> None:
    execution = call.execution
    call_dir = services.settings.work_dir / "calls" / execution.id
    timeout = call.deployment.execution_timeout_s
    status, why, pod_id = "Failed", None, ""
    outputs = execution.outputs
    workers = services.low_latency.workers
    try:
        inputs = await _worker_inputs(services, call, call_dir)
        sent = WorkerCall(execution.id, inputs, call_dir, _sdk_environment(services, execution.id))
        outcome = await asyncio.wait_for(workers.call(call.deployment_record.name, sent), timeout)
        pod_id = outcome.pod_id
        if outcome.error is None:
            outputs = await _store_outputs(services, execution, outcome, call_dir)
            status = "Succeeded"
    except _InputError as exc:
        why = str(exc)
    except TimeoutError:
        why = f"the call did not end within execution_timeout_s ({timeout} s)"
    except (WorkerLostError, WorkerStartError) as exc:
        status, why = "Error", str(exc)
    except WorkerError as exc:
        why = str(exc)
    except Exception as exc:
        _log.exception("low-latency call %s failed", execution.id)
        status, why = "Error", f"internal error in the gateway: {exc!r}"
    finally:
        if _has_files(call.pipeline):  # only these have a folder: no thread for the others
            await asyncio.to_thread(shutil.rmtree, call_dir, True)
    ended = None
    try:
        ended = await _finish(services, call, _End(status, outputs, why, pod_id))
    finally:
        services.low_latency.end_call(execution.id, ended)


def _has_files(pipeline: Pipeline) -> bool:
    declared = [*pipeline.inputs, *pipeline.outputs]
    return any(item.data_type is DataType.FILE for item in declared)


@dataclass(frozen=True)
class _End:
    status: str
    outputs: list[dict[str, Any]]
    why: str | None  # for a failure the worker did not explain itself
    pod_id: str


async def _finish(services: Services, call: _Call, end: _End) -> ExecutionRecord:
    execution = call.execution
    ended = datetime.now(UTC)
    step = execution.steps[0]["name"]  # its one step, as recorded when the call began
    steps = [step_record(step, end.status, execution.created_at, ended, call.pipeline)]
    final = replace(execution, status=end.status, end_date=ended, steps=steps, outputs=end.outputs)
    reason = []
    if end.why is not None:
        line = WorkerLogLine(
            deployment_name=execution.deployment_name or "",
            pod_id=end.pod_id,
            execution_id=execution.id,
            timestamp=ended,
            stream="stderr",
            content=f"tender: {end.why}",
        )
        reason.append(line)

    def write(lines: Sequence[WorkerLogLine]) -> None:
        services.low_latency.log_lines.finish_call(
            execution.id,
            status=end.status,
            end_date=ended,
            steps=steps,
            outputs=end.outputs,
            lines=[*lines, *reason],
        )

    await services.low_latency.write_with_lines(write)
    return final


def _sdk_environment(services: Services, execution_id: str) -> dict[str, str]:
    """What ``CraftAiSdk()`` reads inside the call: what a step reads from its execution's
    Secret (``gateway.step_tokens``), and the execution id a step has in its environment."""
    secret = execution_secret_data(
        services.signing_key, execution_id, services.settings.resolved_internal_url
    )
    return {
        EXECUTION_ID_ENV: execution_id,
        **{name: secret[key] for name, key in SDK_ENVIRONMENT.items()},
    }


async def _worker_inputs(services: Services, call: _Call, call_dir: Path) -> list[dict[str, Any]]:
    """The inputs as the step runner reads them (``TENDER_STEP``), values given as ``text``."""
    bindings = bind_deployment(call.pipeline, call.deployment)
    entries = []
    for declared in call.pipeline.inputs:
        name = declared.name
        binding = bindings.inputs[name]
        entry: dict[str, Any] = {"name": name, "data_type": declared.data_type.value}
        if declared.data_type is DataType.FILE:
            key = None
            if isinstance(binding, StoredFile):
                key = binding.key
            elif isinstance(binding, FromParameter):
                key = call.files.get(name) or binding.value
            if key is None or key == ABSENT_FILE_KEY:
                continue  # no file: the function's own default applies
            entry["path"] = str(await _fetch(services, key, call_dir / "inputs" / name, name))
        elif isinstance(binding, FromSecret):
            value = await services.in_store(services.variables.get, binding.variable)
            if value is None:
                raise _InputError(
                    f"input {name!r} reads environment variable {binding.variable!r}, "
                    "which does not exist"
                )
            entry |= {"env": binding.variable, "encoding": "raw", "text": value}
        else:
            if isinstance(binding, Fixed):
                text = binding.text
            else:
                assert isinstance(binding, FromParameter)
                given = name in call.given
                text = encode_parameter(call.given[name]) if given else binding.value or ""
            entry |= {"env": INPUT_ENV_PREFIX + name, "encoding": "json", "text": text}
        entries.append(entry)
    return entries


async def _fetch(services: Services, key: str, path: Path, name: str) -> Path:
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    try:
        chunks = await services.storage.open(key)
    except ObjectNotFoundError:
        where = key.removeprefix("datastore/")
        raise _InputError(f"input {name!r}: the file {where!r} does not exist") from None
    with path.open("wb") as file:
        async for chunk in chunks:
            await asyncio.to_thread(file.write, chunk)
    return path


async def _store_outputs(
    services: Services, execution: ExecutionRecord, outcome: CallOutcome, call_dir: Path
) -> list[dict[str, Any]]:
    outputs = with_output_values(execution.outputs, dict(outcome.values))
    for item in outputs:
        name = item["pipeline_output_name"]
        if item["data_type"] == "file" and "key" in item and name in outcome.files:
            await services.storage.put_file(item["key"], call_dir / "outputs" / name)
    return outputs
