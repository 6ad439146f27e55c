"""A bounded load: 500 endpoint calls sent at once on loopback; every one answered 303 (no
5xx, none dropped), and every execution recorded and ended Succeeded. Its times go to
``bench/load_bench.py`` (bench/README.md), never into an assertion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.load_bench import load
from bench.noop_pipeline import write_code
from bench.serving import create_noop
from tests.gateway.acceptance.conftest import Gateway

CALLS = 500


@pytest.mark.timeout(1200)  # 500 executions on two cores: minutes when the machine is busy
def test_500_endpoint_calls_at_once_are_all_answered_and_recorded(
    gateway: Gateway, sdk: Any, pipeline_name: Callable[[str], str], tmp_path: Path
) -> None:
    name = pipeline_name("load")
    token = create_noop(sdk, write_code(tmp_path / "code"), name)
    result = load(gateway.base_url, name, token, lambda: sdk.list_pipeline_executions(name), CALLS)
    assert dict(result.statuses) == {303: CALLS}
    assert result.server_errors == 0
    assert result.recorded == CALLS
    assert result.lost == 0
