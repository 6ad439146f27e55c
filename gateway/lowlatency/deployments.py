"""The workers of a low-latency deployment: started when it is created or enabled, stopped when
it is disabled or deleted, started again when the gateway starts.

Each start unpacks the pipeline's code into the deployment's own folder and runs the workers
with the pipeline's virtualenv, the base environment of a step (PATH, HOME, locale) and every
environment variable as it is at that moment, as a step sees them when it starts.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime

from compiler import Deployment, Pipeline
from compiler.keys import code_key
from compiler.values import MAX_VALUE_BYTES
from gateway.archives import CODE_ARCHIVE_ROOT, extract_code_archive
from gateway.dates import format_date
from gateway.engines.local.settings import default_base_env
from gateway.environment_variables import list_variables
from gateway.environments import environment_python
from gateway.lowlatency.errors import WorkerStartError
from gateway.lowlatency.pods import WorkerSpec
from gateway.lowlatency.rules import memory_limit, parallel
from gateway.services import Services
from gateway.store.records import LOW_LATENCY_TRIGGER, DeploymentRecord, WorkerLogLine

__all__ = [
    "fail_interrupted_calls",
    "is_low_latency",
    "pods",
    "start_workers",
    "stop_workers",
]

_RESTARTED = "the gateway restarted while the call ran"


def is_low_latency(record: DeploymentRecord) -> bool:
    return bool(record.definition.get("mode") == "low_latency")


async def start_workers(services: Services, record: DeploymentRecord) -> None:
    """Start the deployment's pods; raises WorkerStartError (logged in the pods' log too)."""
    stored = await services.in_store(services.pipelines.get, record.pipeline_name)
    if stored is None:
        raise WorkerStartError(f"pipeline {record.pipeline_name!r} is gone")
    pipeline = Pipeline.model_validate(stored.definition)
    deployment = Deployment.model_validate(record.definition)
    settings = services.settings
    python = environment_python(pipeline.pipeline_name, settings.environments_dir)
    if not python.exists():
        raise WorkerStartError(f"pipeline {pipeline.pipeline_name!r} has no environment")
    folder = settings.work_dir / "lowlatency" / record.name
    await asyncio.to_thread(shutil.rmtree, folder, True)
    archive = await services.storage.read_bytes(code_key(pipeline.pipeline_name))
    await asyncio.to_thread(
        extract_code_archive, archive, folder / "unpacked", max_bytes=settings.max_code_bytes
    )
    code_dir = folder / "unpacked" / CODE_ARCHIVE_ROOT
    step = pipeline.all_steps()[0]
    spec = WorkerSpec(
        deployment=record.name,
        python=str(python),
        code_dir=code_dir,
        function_path=step.function_path,
        function_name=step.function_name,
        outputs=[{"name": o.name, "data_type": o.data_type.value} for o in step.outputs],
        max_value_bytes=MAX_VALUE_BYTES,
        parallel=parallel(deployment),
        memory_limit_bytes=memory_limit(deployment),
        env={**default_base_env(), **await list_variables(services)},
        pods=settings.low_latency_pods,
        work_dir=folder / "pods",
    )
    await services.low_latency.workers.start(spec)
    services.low_latency.serve(record.name, pipeline)


async def stop_workers(services: Services, name: str, reason: str) -> None:
    services.low_latency.serve(name, None)
    await services.low_latency.workers.stop(name, reason)
    folder = services.settings.work_dir / "lowlatency" / name
    await asyncio.to_thread(shutil.rmtree, folder, True)


def pods(services: Services, name: str) -> list[dict[str, str]]:
    return services.low_latency.workers.pods(name)


async def fail_interrupted_calls(services: Services) -> None:
    """At gateway start: the calls a previous gateway left running end in Error (their
    workers ended with it)."""
    executions = services.executions
    for execution_id in await services.in_store(executions.unfinished_ids):
        record = await services.in_store(executions.get, execution_id)
        if record is None or record.trigger != LOW_LATENCY_TRIGGER:
            continue
        ended = datetime.now(UTC)
        line = WorkerLogLine(
            deployment_name=record.deployment_name or "",
            pod_id="",
            execution_id=record.id,
            timestamp=ended,
            stream="stderr",
            content=f"tender: {_RESTARTED}",
        )
        await services.in_store(
            services.low_latency.log_lines.finish_call,
            record.id,
            status="Error",
            end_date=ended,
            steps=[{**s, "status": "Error", "end_date": format_date(ended)} for s in record.steps],
            outputs=record.outputs,
            lines=[line],
        )
