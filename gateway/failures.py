"""Why an execution failed, in the error its caller gets.

A failed execution answers 500 with a message, which the SDK raises as an SdkException
(craft-api.md sections 5.3 and 5.5): the message names the failed steps and the last line the
step wrote to stderr (the step runner ends with one), or, when the step never ran its code (a
missing secret key or input artifact), the engine's message for it.

The engine speaks of Kubernetes objects a platform user never made: a key missing from the
Secret that holds the environment variables is said as the user's variable that does not exist.
"""

from __future__ import annotations

from typing import Any

from gateway.engines.errors import EngineError, ObjectNotFoundError
from gateway.errors import ExecutionFailedError
from gateway.lowlatency.logs import call_log_lines
from gateway.missing_variables import missing_variable
from gateway.services import Services
from gateway.store.records import LOW_LATENCY_TRIGGER, ExecutionRecord

__all__ = ["WORKFLOW_GONE", "failure_error"]

_RUNNER_PREFIX = "tender: "
WORKFLOW_GONE = "the engine no longer has its workflow (deleted by hand, or after its time to live)"


async def failure_error(services: Services, record: ExecutionRecord) -> ExecutionFailedError:
    failed = [s["name"] for s in record.steps if s["status"] in ("Failed", "Error")]
    message = f"execution {record.id!r} ended {record.status}"
    if failed:
        message += f" in step {', '.join(failed)}"
    if reason := await _reason(services, record):
        message += f": {reason}"
    return ExecutionFailedError(
        message, additional_data={"execution_id": record.id, "status": record.status}
    )


async def _lines(services: Services, record: ExecutionRecord) -> list[tuple[str, str]]:
    """(stream, text) of each line the execution wrote: its steps', or its worker's."""
    if record.trigger == LOW_LATENCY_TRIGGER:
        return [(line.stream, line.content) for line in await call_log_lines(services, record)]
    return [(e["stream"], e["content"]) for e in await services.engine.workflow_logs(record.id)]


def _in_users_words(reason: str, record: ExecutionRecord) -> str:
    variable = missing_variable(reason)
    if variable is None:
        return reason
    inputs = [
        item["pipeline_input_name"]
        for item in record.inputs
        if item.get("mapping_value") == {"environment_variable_name": variable}
    ]
    mapped = f" (input {', '.join(map(repr, inputs))} is mapped from it)" if inputs else ""
    return (
        f"environment variable {variable!r} does not exist{mapped}: create it, "
        "or map the input from another source"
    )


async def _reason(services: Services, record: ExecutionRecord) -> str | None:
    """The step runner's own line, or the last line on stderr, or the engine's message.

    The runner's line is found by its ``tender: `` prefix on any stream: a cluster's logs
    interleave stdout and stderr into one stream."""
    try:
        lines = await _lines(services, record)
    except EngineError:
        lines = []
    runner = [text for _, text in lines if text.startswith(_RUNNER_PREFIX)]
    if runner:
        return runner[-1].removeprefix(_RUNNER_PREFIX)
    errors = [text for stream, text in lines if stream == "stderr" and text.strip()]
    if errors:
        return errors[-1]
    if record.trigger == LOW_LATENCY_TRIGGER:
        return None  # no Workflow: a call always ends with a `tender:` line when it fails
    try:
        workflow = await services.engine.get_workflow(record.id)
    except ObjectNotFoundError:
        return None if lines else WORKFLOW_GONE
    except EngineError:
        return None
    reason = _node_failure(workflow) or (workflow.get("status") or {}).get("message")
    return _in_users_words(reason, record) if reason else None


def _node_failure(workflow: dict[str, Any]) -> str | None:
    """The message of the last failed pod of a Workflow, as its engine reports it."""
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    messages = [
        node["message"]
        for node in nodes.values()
        if node.get("type") == "Pod" and node.get("phase") in ("Failed", "Error")
        if node.get("message")
    ]
    return messages[-1] if messages else None
