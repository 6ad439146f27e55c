"""Executions that a CronWorkflow started: nobody called the gateway for them, so their
records are made when they are found (``ExecutionTracker`` looks for them as it watches)."""

from __future__ import annotations

from datetime import datetime

from compiler.labels import DEPLOYMENT_LABEL
from gateway.deployments.definitions import deployment_of
from gateway.deployments.lifecycle import deployments_of, pipeline_of
from gateway.engines.base import Manifest
from gateway.execution_io import deployment_inputs, deployment_outputs
from gateway.services import Services
from gateway.store.records import ExecutionRecord

__all__ = ["scheduled_execution"]


async def scheduled_execution(services: Services, workflow: Manifest) -> ExecutionRecord | None:
    """The record of a CronWorkflow's child, or None if its deployment or pipeline is gone."""
    metadata = workflow["metadata"]
    name = metadata.get("labels", {}).get(DEPLOYMENT_LABEL)
    if name is None:
        return None
    record = await services.in_store(deployments_of(services).get, name)
    if record is None:
        return None
    pipeline = await pipeline_of(services, record)
    if pipeline is None:
        return None
    deployment = deployment_of(record)
    created = datetime.fromisoformat(metadata["creationTimestamp"])
    return ExecutionRecord(
        id=metadata["name"],
        pipeline_name=record.pipeline_name,
        deployment_name=record.name,
        trigger="periodic",
        created_by=record.created_by,
        created_at=created,
        status="Pending",
        end_date=None,
        steps=[],
        inputs=deployment_inputs(pipeline, deployment, {}, {}),
        outputs=deployment_outputs(pipeline, deployment, metadata["name"], created),
    )
