"""Why an execution failed, in the error its caller gets.

A failed execution answers 500 with a message, which the SDK raises as an SdkException
(craft-api.md sections 5.3 and 5.5): the message names the failed steps and the last line the
step wrote to stderr (the step runner ends with one), or, when the step never ran its code (a
missing secret key or input artifact), the engine's message for it.

The engine speaks of Kubernetes objects a platform user never made: a key missing from the
Secret that holds the environment variables is said as the user's variable that does not exist.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from compiler import CompileOptions
from gateway.engines.errors import EngineError
from gateway.errors import ExecutionFailedError
from gateway.lowlatency.logs import call_log_lines
from gateway.services import Services
from gateway.store.records import LOW_LATENCY_TRIGGER, ExecutionRecord

__all__ = ["failure_error"]

# Kubernetes' (and the embedded engine's) words for a secretKeyRef whose key is missing.
_MISSING_KEY = re.compile(r"couldn't find key (?P<key>\S+) in Secret (?:[^/\s]+/)?(?P<secret>\S+)")
_SECRET_NAME = CompileOptions().secret_name


async def failure_error(services: Services, record: ExecutionRecord) -> ExecutionFailedError:
    failed = [s["name"] for s in record.steps if s["status"] in ("Failed", "Error")]
    message = f"execution {record.id!r} ended {record.status}"
    if failed:
        message += f" in step {', '.join(failed)}"
    with contextlib.suppress(EngineError):
        errors = [
            content
            for stream, content in await _lines(services, record)
            if stream == "stderr" and content.strip()
        ]
        if errors:
            message += f": {errors[-1].removeprefix('tender: ')}"
        elif record.trigger == LOW_LATENCY_TRIGGER:
            pass  # no Workflow: a call always ends with a `tender:` line when it fails
        elif reason := _node_failure(await services.engine.get_workflow(record.id)):
            message += f": {_in_users_words(reason, record)}"
    return ExecutionFailedError(
        message, additional_data={"execution_id": record.id, "status": record.status}
    )


async def _lines(services: Services, record: ExecutionRecord) -> list[tuple[str, str]]:
    """(stream, text) of each line the execution wrote: its steps', or its worker's."""
    if record.trigger == LOW_LATENCY_TRIGGER:
        return [(line.stream, line.content) for line in await call_log_lines(services, record)]
    return [(e["stream"], e["content"]) for e in await services.engine.workflow_logs(record.id)]


def _in_users_words(reason: str, record: ExecutionRecord) -> str:
    found = _MISSING_KEY.search(reason)
    if found is None or found["secret"].rstrip(".,;") != _SECRET_NAME:
        return reason
    variable = found["key"]
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
