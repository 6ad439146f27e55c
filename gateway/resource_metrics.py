"""``get_resource_metrics``: the samples of a period, as the SDK reads them or as CSV.

The JSON is Prometheus' range-query shape the SDK documents: per metric, one series per worker,
``{"metric": {"worker": ...}, "values": [[unix seconds, value], ...]}``. The CSV has one line
per sample and metric: ``metric,worker,timestamp,value``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.dates import format_date
from gateway.errors import BadRequestError
from gateway.store.resources import ResourceSample

__all__ = ["SERIES", "parse_period", "resource_csv", "resource_json"]

# The SDK's metric names -> the sample's field (no GPU: vram_usage and gpu_usage are left out).
SERIES = {
    "cpu_usage": "cpu_usage",
    "disk_usage": "disk_usage",
    "ram_usage": "ram_usage",
    "network_input_usage": "network_input",
    "network_output_usage": "network_output",
}


def _milliseconds(query: Mapping[str, str], key: str) -> datetime:
    text = query.get(key)
    if text is None or not text.lstrip("-").isdigit():
        raise BadRequestError(
            f"{key} must be a date in milliseconds since the epoch, not {text!r}",
            name="InvalidQuery",
        )
    try:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRequestError(f"{key} is out of range: {text!r}", name="InvalidQuery") from None


def parse_period(query: Mapping[str, str]) -> tuple[datetime, datetime, bool]:
    """``start``, ``end`` and whether the answer is a CSV download (``download=True``)."""
    start, end = _milliseconds(query, "start"), _milliseconds(query, "end")
    if end < start:
        raise BadRequestError("end is before start", name="InvalidQuery")
    download = query.get("download", "false").lower()
    if download not in ("true", "false"):
        raise BadRequestError(
            f"download must be True or False, not {download!r}", name="InvalidQuery"
        )
    return start, end, download == "true"


def resource_json(samples: list[ResourceSample]) -> dict[str, Any]:
    series: dict[str, dict[str, list[list[float]]]] = {name: {} for name in SERIES}
    for sample in samples:
        stamp = round(sample.taken_at.timestamp(), 3)
        for name, field in SERIES.items():
            values = series[name].setdefault(sample.worker, [])
            values.append([stamp, round(getattr(sample, field), 3)])
    latest = samples[-1] if samples else None
    return {
        "additional_data": {
            "total_disk": latest.total_disk if latest else 0,
            "total_ram": latest.total_ram if latest else 0,
        },
        "metrics": {
            name: [{"metric": {"worker": w}, "values": v} for w, v in by_worker.items()]
            for name, by_worker in series.items()
        },
    }


def resource_csv(samples: list[ResourceSample]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["metric", "worker", "timestamp", "value"])
    for sample in samples:
        for name, field in SERIES.items():
            writer.writerow(
                [name, sample.worker, format_date(sample.taken_at), getattr(sample, field)]
            )
    return text.getvalue().encode()
