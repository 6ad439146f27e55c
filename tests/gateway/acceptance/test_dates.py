"""Dates as the SDK reads them: milliseconds everywhere, the same in ``get`` and ``list``, and
in the order things happened: ``created_at <= step start <= step end <= end_date``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.test_deployments import create_adder

NameFactory = Callable[[str], str]
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_quick_runs_have_ordered_millisecond_dates_alike_in_get_and_list(
    sdk: Any, gateway: Gateway, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("dates")
    create_adder(sdk, name, tmp_path)
    ids = [sdk.run_pipeline(name, inputs={"a": n})["execution_id"] for n in range(5)]
    listed = {e["execution_id"]: e for e in sdk.list_pipeline_executions(name)}
    for execution_id in ids:
        got = sdk.get_pipeline_execution(execution_id)
        summary = listed[execution_id]
        [step] = got["steps"]
        dates = [got["created_at"], step["start_date"], step["end_date"], got["end_date"]]
        assert all(DATE.fullmatch(d) for d in dates), dates
        assert dates == sorted(dates), dates  # ISO 8601 in UTC sorts as time does
        if gateway.engine == "local":  # Argo's whole seconds are raised to created_at
            assert got["created_at"] < got["end_date"], "a step takes more than a millisecond"
        for key in ("created_at", "end_date", "status"):
            assert summary[key] == got[key], (key, summary[key], got[key])
        assert summary["steps"] == got["steps"]
