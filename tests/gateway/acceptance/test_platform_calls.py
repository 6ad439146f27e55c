"""The rest of the SDK's surface through the unmodified client: users, pipeline templates,
resource metrics, and the vector database tender does not have."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, Output

from tests.gateway.acceptance.conftest import RESOURCE_SAMPLE_S, Gateway
from tests.gateway.acceptance.folders import write_folder

T = INPUT_OUTPUT_TYPES
NameFactory = Callable[[str], str]

BURN = """
import time


def burn(seconds):
    held = bytearray(b"x" * (32 * 1024 * 1024))
    end = time.process_time() + seconds
    spins = 0
    while time.process_time() < end:
        spins += 1
    return {"held": len(held), "spins": spins}
"""


def test_who_am_i_and_get_user_are_the_token(sdk: Any, gateway: Gateway) -> None:
    me = sdk.who_am_i()
    assert set(me) == {"id", "name", "email"}
    assert me["name"].startswith("acceptance-")
    assert sdk.get_user(me["id"]) == me
    with pytest.raises(SdkException) as missing:
        sdk.get_user("nobody")
    assert (missing.value.status_code, missing.value.name) == (404, "UserNotFound")


def test_pipeline_templates_list_describe_and_create(sdk: Any, pipeline_name: NameFactory) -> None:
    templates = {t["name"]: t for t in sdk.list_pipeline_templates()}
    assert {"hello", "etl", "word-count", "nightly-report"} <= set(templates)
    assert templates["hello"]["enabled"] is True
    details = sdk.get_pipeline_template("word-count")
    assert [i["name"] for i in details["inputs"]] == ["document", "lowercase", "top"]
    assert {"pipeline_input_name": "lowercase", "constant_value": True} in details[
        "recommended_inputs_mapping"
    ]
    with pytest.raises(SdkException) as missing:
        sdk.get_pipeline_template("no-such-template")
    assert missing.value.status_code == 404

    name = pipeline_name("from-template")
    created = sdk.create_pipeline(name, pipeline_template_name="hello")
    assert created["creation_info"]["status"] == "ready"
    assert sdk.run_pipeline(name, inputs={"who": "tender"})["outputs"]["greeting"].startswith(
        "Hello, tender"
    )
    with pytest.raises(SdkException) as unknown:
        sdk.create_pipeline(pipeline_name("nope"), pipeline_template_name="no-such-template")
    assert unknown.value.status_code == 404


def test_the_vector_database_is_not_provided(sdk: Any, gateway: Gateway) -> None:
    info = requests.get(f"{gateway.api}/environment-info", timeout=30)  # no token, as the SDK
    assert info.status_code == 200
    assert info.json()["environment_id"]
    with pytest.raises(SdkException) as raised:
        sdk.get_vector_database_credentials()
    assert (raised.value.status_code, raised.value.name) == (501, "VectorDatabaseNotProvided")
    assert "no vector database" in raised.value.message


def test_resource_metrics_measure_what_a_step_used(
    sdk: Any, gateway: Gateway, http: requests.Session, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("burn")
    folder = write_folder(tmp_path / "burn", {"src/burn.py": BURN})
    sdk.create_pipeline(
        name,
        function_path="src/burn.py",
        function_name="burn",
        container_config={"local_folder": str(folder)},
        inputs=[Input("seconds", T.NUMBER)],
        outputs=[Output("held", T.NUMBER), Output("spins", T.NUMBER)],
    )
    start = datetime.now(UTC)
    sdk.run_pipeline(name, inputs={"seconds": 1.5})
    time.sleep(4 * RESOURCE_SAMPLE_S)  # the samples that cover the step's end
    end = datetime.now(UTC) + timedelta(seconds=1)
    measured = sdk.get_resource_metrics(start, end)
    assert measured["additional_data"]["total_ram"] == psutil.virtual_memory().total
    metrics = measured["metrics"]
    assert set(metrics) == {
        "cpu_usage",
        "ram_usage",
        "disk_usage",
        "network_input_usage",
        "network_output_usage",
    }
    [cpu] = metrics["cpu_usage"]
    assert cpu["metric"]["worker"]
    values = cpu["values"]
    # CPU seconds the samples account for: at least most of the 1.5 s the step burned.
    cores = psutil.cpu_count() or 1
    used = sum(
        value / 100 * (at - before) * cores
        for (before, _), (at, value) in itertools.pairwise(values)
    )
    assert used >= 1.0, values
    [ram] = metrics["ram_usage"]
    assert max(v for _, v in ram["values"]) > 0
    csv = sdk.get_resource_metrics(start, end, csv=True)
    assert csv.startswith(b"metric,worker,timestamp,value\n")
    assert b"\ncpu_usage," in csv
    bad = http.get(f"{gateway.api}/resource-metrics", params={"start": "x", "end": 1}, timeout=30)
    assert (bad.status_code, bad.json()["name"]) == (400, "InvalidQuery")
