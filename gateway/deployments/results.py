"""An endpoint execution's results as endpoint-token callers read them, and its failure."""

from __future__ import annotations

from typing import Any

from gateway.services import Services
from gateway.store.records import ExecutionRecord

__all__ = ["endpoint_output", "endpoint_results"]


async def endpoint_results(
    services: Services, record: ExecutionRecord, url_path: str
) -> dict[str, dict[str, Any]]:
    """``{name: {"value": v}}``, or for a file ``{"url": u}``: absolute and without '?', since
    the SDK appends ``?token=`` to it (core/endpoints.py:208); null if no file was produced."""
    base = services.settings.resolved_external_url
    found: dict[str, dict[str, Any]] = {}
    for item in record.outputs:
        if item["mapping_type"] != "endpoint":
            continue
        name = item["mapping_value"]["endpoint_output_name"]
        if item["data_type"] != "file":
            found[name] = {"value": item.get("value")}
            continue
        url = None
        if "key" in item and await services.storage.exists(item["key"]):
            url = f"{base}/endpoints/v1/{url_path}/executions/{record.id}/outputs/{name}"
        found[name] = {"url": url}
    return found


def endpoint_output(record: ExecutionRecord, name: str) -> dict[str, Any] | None:
    for item in record.outputs:
        mapping = item["mapping_value"]
        if item["mapping_type"] == "endpoint" and mapping["endpoint_output_name"] == name:
            return item
    return None
