"""Metrics of executions (craft-api.md section 5.8): a step records them with the SDK, the
team reads them back filtered by name, pipeline, deployment or execution.

A value is a finite float (a JSON number; ``true``/``false`` are not numbers here) and a name is
an identifier. A single value replaces the previous one of its execution and name; list values
are appended, at most ``MAX_LIST_BATCH`` per request (the SDK's batch).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.auth import Caller
from gateway.dates import format_date
from gateway.errors import BadRequestError, NotFoundError, PayloadTooLargeError
from gateway.services import Services
from gateway.step_scope import check_own_execution
from gateway.store.metrics import MetricFilter, MetricPage, MetricRepository

__all__ = [
    "MAX_LIST_BATCH",
    "MAX_PAGE_SIZE",
    "append_list_values",
    "list_metrics",
    "parse_filter",
    "put_single_value",
]

MAX_LIST_BATCH = 10_000  # record_list_metric_values sends this many per request
MAX_PAGE_SIZE = 10_000  # the SDK asks for 5,000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_FILTERS = ("name", "pipeline_name", "deployment_name", "execution_id")


def _metrics(services: Services) -> MetricRepository:
    return MetricRepository(services.db)


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadRequestError(
            f"metric name {name!r} is not an identifier (letters, digits and '_', not "
            "starting with a digit, at most 128 characters)",
            name="InvalidMetricName",
        )
    return name


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestError(
            f"{what} must be a number, not {type(value).__name__}", name="InvalidMetricValue"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadRequestError(f"{what} must be a finite number", name="InvalidMetricValue")
    return number


def _execution_of(body: object, key: str) -> tuple[str, Any]:
    if not isinstance(body, dict) or key not in body or "execution_id" not in body:
        raise BadRequestError(
            f'the body must be {{"{key}": ..., "execution_id": "<execution id>"}}',
            name="InvalidBody",
        )
    execution_id = body["execution_id"]
    if not isinstance(execution_id, str) or not execution_id:
        raise BadRequestError("execution_id must be a non-empty string", name="InvalidBody")
    return execution_id, body[key]


async def _check_execution(services: Services, caller: Caller, execution_id: str) -> None:
    check_own_execution(caller, execution_id)
    if await services.in_store(services.executions.get, execution_id) is None:
        raise NotFoundError(f"execution {execution_id!r} not found", name="ExecutionNotFound")


async def put_single_value(services: Services, caller: Caller, name: str, body: object) -> None:
    _check_name(name)
    execution_id, given = _execution_of(body, "value")
    value = _number(given, "value")
    await _check_execution(services, caller, execution_id)
    await services.in_store(
        _metrics(services).put_value, execution_id, name, value, datetime.now(UTC)
    )


async def append_list_values(services: Services, caller: Caller, name: str, body: object) -> int:
    """Append the body's values to the list; returns how many."""
    _check_name(name)
    execution_id, given = _execution_of(body, "values")
    if not isinstance(given, list):
        raise BadRequestError("values must be a list of numbers", name="InvalidMetricValue")
    if len(given) > MAX_LIST_BATCH:
        raise PayloadTooLargeError(
            f"{len(given)} values in one request, more than {MAX_LIST_BATCH}: send them in "
            "batches (the SDK does)",
            name="TooManyMetricValues",
        )
    values = [_number(v, f"values[{i}]") for i, v in enumerate(given)]
    await _check_execution(services, caller, execution_id)
    if values:
        await services.in_store(
            _metrics(services).append_values, execution_id, name, values, datetime.now(UTC)
        )
    return len(values)


def parse_filter(query: Mapping[str, str], caller: Caller) -> MetricFilter:
    """``filters[name]``, ``filters[pipeline_name]``... as the SDK sends them. A step reads the
    metrics of its own execution only."""
    given = {key: query.get(f"filters[{key}]") or None for key in _FILTERS}
    if caller.is_step:
        if given["execution_id"] is not None:
            check_own_execution(caller, given["execution_id"])
        given["execution_id"] = caller.execution_id
    return MetricFilter(**given)


def _page_number(query: Mapping[str, str], key: str, default: int, top: int) -> int:
    text = query.get(key)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= top:
        raise BadRequestError(
            f"{key} must be a whole number from 1 to {top}, not {text!r}", name="InvalidQuery"
        )
    return int(text)


async def list_metrics(
    services: Services, caller: Caller, query: Mapping[str, str], *, lists: bool
) -> dict[str, Any]:
    found = parse_filter(query, caller)
    page = _page_number(query, "page", 1, 10**9)
    per_page = _page_number(query, "items_per_page", 5000, MAX_PAGE_SIZE)
    repository = _metrics(services)
    listing = repository.list_lists if lists else repository.list_values
    result: MetricPage = await services.in_store(listing, found, page, per_page)
    metrics = [{**item, "created_at": format_date(item["created_at"])} for item in result.items]
    return {"metrics": metrics, "total_count": result.total_count}
