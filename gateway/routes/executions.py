"""Executions: outputs (long-polled), input and output values, details, logs, deletion."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from gateway.bodies import LimitedRoute
from gateway.deps import CallerDep, ServicesDep, TrackerDep, current_user
from gateway.engines.errors import ObjectNotFoundError
from gateway.engines.local.clock import format_log_time
from gateway.engines.naming import node_id
from gateway.errors import ConflictError, NotFoundError
from gateway.executions import execution_view, public_io
from gateway.failures import failure_error
from gateway.logs import LogQuery, filter_logs
from gateway.lowlatency.logs import call_log_lines
from gateway.pipelines import delete_execution_objects
from gateway.responses import JSON
from gateway.services import Services
from gateway.step_scope import check_step_may_read
from gateway.store.records import LOW_LATENCY_TRIGGER

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/executions", dependencies=[Depends(current_user)], route_class=LimitedRoute
)

_ATTEMPT = re.compile(r"\(\d+\)$")


@router.get("/{execution_id}/outputs")
async def outputs(
    execution_id: str,
    request: Request,
    *,
    tracker: TrackerDep,
    services: ServicesDep,
    caller: CallerDep,
    wait: Annotated[bool, Query(alias="wait_for_completion")] = False,
) -> Response:
    """Once the execution ended, its outputs; until then, with ``wait``, 307 to this same URL.

    The SDK re-sends the same request while it gets 307 (craft-api.md section 5.3), so each
    answer holds the request until the end or for the long-poll time, never a busy loop.
    """
    timeout = services.settings.long_poll_s if wait else 0.0
    if caller.is_step:
        check_step_may_read(caller, await tracker.get(execution_id))
    record = await tracker.wait(execution_id, timeout)
    if not record.is_finished:
        body = {"execution_id": execution_id, "status": record.status}
        return JSON(body, status_code=307, headers={"Location": str(request.url)})
    if record.status in ("Failed", "Error"):
        raise await failure_error(services, record)
    return JSON({"outputs": public_io(record.outputs)})


@router.get("/{execution_id}/outputs/{output_name}")
async def output_value(
    execution_id: str,
    output_name: str,
    tracker: TrackerDep,
    services: ServicesDep,
    caller: CallerDep,
) -> Response:
    record = await tracker.get(execution_id)
    check_step_may_read(caller, record)
    item = _find(record.outputs, "pipeline_output_name", output_name, record.id)
    if not record.is_finished:
        raise ConflictError(f"execution {record.id!r} has not ended yet", name="NotFinished")
    return await _value_response(services, item)


@router.get("/{execution_id}/inputs/{input_name}")
async def input_value(
    execution_id: str, input_name: str, tracker: TrackerDep, services: ServicesDep
) -> Response:
    record = await tracker.get(execution_id)
    item = _find(record.inputs, "pipeline_input_name", input_name, record.id)
    return await _value_response(services, item)


def _find(items: list[dict[str, Any]], field: str, name: str, execution_id: str) -> dict[str, Any]:
    for item in items:
        if item[field] == name:
            return item
    kind = "output" if "output" in field else "input"
    raise NotFoundError(
        f"execution {execution_id!r} has no {kind} {name!r}", name=f"{kind.title()}NotFound"
    )


async def _value_response(services: ServicesDep, item: dict[str, Any]) -> Response:
    """A file as ``application/octet-stream``; any other value as its raw JSON."""
    if item["data_type"] != "file":
        return Response(orjson.dumps(item.get("value")), media_type="application/json")
    key = item.get("key")
    if key is None or not await services.storage.exists(key):
        raise NotFoundError("this file was not produced or not given", name="FileNotFound")
    chunks = await services.storage.open(key)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@router.get("/{execution_id}")
async def read(execution_id: str, tracker: TrackerDep) -> dict[str, Any]:
    return execution_view(await tracker.get(execution_id))


@router.post("/{execution_id}/logs")
async def logs(
    execution_id: str,
    tracker: TrackerDep,
    services: ServicesDep,
    query: Annotated[LogQuery | None, Body()] = None,
) -> list[list[dict[str, Any]]]:
    """One list of lines for the whole execution: the SDK returns only the first list."""
    record = await tracker.get(execution_id)
    if record.trigger == LOW_LATENCY_TRIGGER:
        step = record.steps[0]["name"] if record.steps else ""
        found = [
            {
                "timestamp": format_log_time(line.timestamp),
                "message": line.content,
                "stream": line.stream,
                "step": step,
            }
            for line in await call_log_lines(services, record)
        ]
        return [filter_logs(found, query or LogQuery())]
    node_steps = await _node_steps(services, record.id, [s["name"] for s in record.steps])
    lines = [
        {
            "timestamp": entry["timestamp"],
            "message": entry["content"],
            "stream": entry["stream"],
            "step": node_steps.get(entry["node_id"], entry["node_id"]),
        }
        for entry in await services.engine.workflow_logs(record.id)
    ]
    return [filter_logs(lines, query or LogQuery())]


async def _node_steps(services: Services, workflow_name: str, steps: list[str]) -> dict[str, str]:
    """Node id to step name. Once the engine deleted the Workflow (Argo's TTL), the ids are
    Argo's, computed from the node names (``<workflow>.<step>``)."""
    try:
        workflow = await services.engine.get_workflow(workflow_name)
    except ObjectNotFoundError:
        return {node_id(workflow_name, f"{workflow_name}.{step}"): step for step in steps}
    by_node_name = {f"{workflow_name}.{step}": step for step in steps}
    # A retried step's attempts are nodes "<workflow>.<step>(0)", "(1)"...: they log as the step.
    return {
        node["id"]: by_node_name[name]
        for node in (workflow.get("status") or {}).get("nodes", {}).values()
        if (name := _ATTEMPT.sub("", node["name"])) in by_node_name
    }


@router.delete("/{execution_id}")
async def delete(execution_id: str, tracker: TrackerDep, services: ServicesDep) -> dict[str, Any]:
    record = await tracker.get(execution_id)
    await delete_execution_objects(services, record.id)
    return {"execution_id": record.id}
