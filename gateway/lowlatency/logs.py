"""The lines low-latency workers wrote, as ``get_deployment_logs`` and an execution's log read
them. Lines not stored yet are stored first, so that a reader sees everything written so far."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.engines.local.clock import format_log_time
from gateway.logs import LogQuery
from gateway.services import Services
from gateway.store.records import ExecutionRecord, WorkerLogLine

__all__ = ["call_log_lines", "deployment_logs"]


async def deployment_logs(services: Services, name: str, query: LogQuery) -> list[dict[str, Any]]:
    """``{timestamp, message, stream, pod_id, type: "deployment"}`` (craft-api.md section 5.4),
    oldest first; ``limit`` keeps the latest ones."""
    await services.low_latency.flush()
    lines = await services.in_store(
        services.low_latency.log_lines.of_deployment,
        name,
        since=_time(query.from_ms),
        until=_time(query.to_ms),
        limit=query.limit,
    )
    return [
        {
            "timestamp": format_log_time(line.timestamp),
            "message": line.content,
            "stream": line.stream,
            "pod_id": line.pod_id,
            "type": "deployment",
        }
        for line in lines
    ]


async def call_log_lines(services: Services, execution: ExecutionRecord) -> list[WorkerLogLine]:
    if not execution.is_finished:
        await services.low_latency.flush()
    lines: list[WorkerLogLine] = await services.in_store(
        services.low_latency.log_lines.of_execution, execution.id
    )
    return lines


def _time(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC)
