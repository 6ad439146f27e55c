"""The compiler's manifests for examples/ run on the LocalEngine, unchanged, to their outputs.

This is the end-to-end proof that what the compiler emits is wired correctly: code archives,
value and file inputs, step-to-step wiring, datastore paths, secrets, templates and crons.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler import compile_document, parse_document
from compiler.keys import code_key, datastore_key
from gateway.archives import pack_code_archive
from gateway.engines.local import LocalEngineSettings, ManualClock
from gateway.step_tokens import execution_secret_lookup
from tests.gateway.engines.engine_manifests import EngineFactory

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# Every compiled step reads the SDK's settings from its execution's Secret, which the gateway
# provides (gateway.services); these tests stand in for it.
EXECUTION_SECRETS = execution_secret_lookup("k" * 48, "http://127.0.0.1:9")


def _load(name: str, artifacts: Path) -> dict[str, Any]:
    """The example's single manifest, with its pipeline's code archive in the artifact folder."""
    document = parse_document((EXAMPLES / name).read_text())
    folder = document.pipeline.container_config.local_folder
    assert folder is not None
    key = artifacts / code_key(document.pipeline.pipeline_name)
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(pack_code_archive(EXAMPLES / folder))
    [manifest] = compile_document(document)
    return manifest


def _outputs(workflow: dict[str, Any]) -> dict[str, Any]:
    root = workflow["status"]["nodes"][workflow["metadata"]["name"]]
    return {p["name"]: json.loads(p["value"]) for p in root["outputs"].get("parameters", [])}


async def test_hello_runs_and_keeps_braces(
    open_engine: EngineFactory, settings: LocalEngineSettings
) -> None:
    manifest = _load("hello.yaml", settings.artifacts_root)
    async with open_engine(secrets=EXECUTION_SECRETS) as engine:
        submitted = await engine.submit_workflow(manifest)
        workflow = await engine.wait_for_workflow(submitted["metadata"]["name"])
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    assert _outputs(workflow) == {"greeting": "Hello, {{world}}.", "letters": 10}


async def test_multi_step_etl_fans_in_and_writes_a_file(
    open_engine: EngineFactory, settings: LocalEngineSettings
) -> None:
    manifest = _load("etl.yaml", settings.artifacts_root)
    async with open_engine(secrets=EXECUTION_SECRETS) as engine:
        submitted = await engine.submit_workflow(manifest)
        name = submitted["metadata"]["name"]
        workflow = await engine.wait_for_workflow(name)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    assert _outputs(workflow) == {"stats": {"count": 3, "total": 24.0, "mean": 8.0}}
    phases = {n["displayName"]: n["phase"] for n in workflow["status"]["nodes"].values()}
    assert phases == {
        name: "Succeeded",
        "parse": "Succeeded",
        "summarise": "Succeeded",
        "write-report": "Succeeded",
    }
    report = settings.artifacts_root / f"executions/{name}/write-report/report"
    assert report.read_text() == "# Report\n\n- 6\n- 8\n- 10\n\n3 numbers, total 24\n"


async def test_endpoint_template_takes_each_calls_inputs(
    open_engine: EngineFactory, settings: LocalEngineSettings
) -> None:
    manifest = _load("word-count-endpoint.yaml", settings.artifacts_root)
    upload = settings.artifacts_root / "inputs/call-1/document"
    upload.parent.mkdir(parents=True)
    upload.write_text("the cat and the hat and THE bat")
    async with open_engine(secrets=EXECUTION_SECRETS) as engine:
        await engine.create_workflow_template(manifest)
        submitted = await engine.submit_from_template(
            "word-count",
            parameters={"document": "inputs/call-1/document", "limit": "2"},
            labels={"tender.io/execution": "call-1"},
        )
        workflow = await engine.wait_for_workflow(submitted["metadata"]["name"])
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    assert _outputs(workflow) == {"counts": {"the": 3, "and": 2}, "total": 8}
    labels = workflow["metadata"]["labels"]
    assert labels["tender.io/deployment"] == "word-count"
    assert labels["tender.io/execution"] == "call-1"


async def test_periodic_report_reads_the_datastore_and_a_secret(
    open_engine: EngineFactory, settings: LocalEngineSettings
) -> None:
    manifest = _load("nightly-report.yaml", settings.artifacts_root)
    _place_sales(settings.artifacts_root)
    seen: list[str] = []

    async def secrets(secret: str) -> Mapping[str, str] | None:
        seen.append(secret)
        if secret == "tender-environment":
            return {"REPORT_API_KEY": "k-123"}
        return await EXECUTION_SECRETS(secret)

    clock = ManualClock(datetime(2026, 3, 1, 2, 29, 30, tzinfo=UTC))
    async with open_engine(clock=clock, secrets=secrets) as engine:
        await engine.create_cron_workflow(manifest)
        await clock.advance(60)
        await engine.crons.tick()
        [child] = await engine.list_workflows("tender.io/deployment=nightly-report")
        workflow = await engine.wait_for_workflow(child["metadata"]["name"])
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    assert "tender-environment" in seen
    name = workflow["metadata"]["name"]
    assert name == f"nightly-report-{int(datetime(2026, 3, 1, 2, 30, tzinfo=UTC).timestamp())}"
    day = workflow["metadata"]["creationTimestamp"][:10].replace("-", "")
    report = settings.artifacts_root / f"datastore/reports/{day}/report-{name}.csv"
    assert report.read_text().splitlines() == ["rows,total,currency,notes", "2,15.00,EUR,"]


def _place_sales(artifacts: Path) -> None:
    sales = artifacts / datastore_key("sales/latest.csv", "test")
    sales.parent.mkdir(parents=True)
    sales.write_text("day,amount\nmon,10.5\ntue,4.5\n")


async def test_a_missing_datastore_object_fails_the_step_naming_it(
    open_engine: EngineFactory, settings: LocalEngineSettings
) -> None:
    manifest = _load("nightly-report.yaml", settings.artifacts_root)
    clock = ManualClock(datetime(2026, 3, 1, 2, 29, 30, tzinfo=UTC))
    async with open_engine(clock=clock, secrets=EXECUTION_SECRETS) as engine:
        await engine.create_cron_workflow(manifest)
        await clock.advance(60)
        await engine.crons.tick()
        [child] = await engine.list_workflows("tender.io/deployment=nightly-report")
        workflow = await engine.wait_for_workflow(child["metadata"]["name"])
    assert workflow["status"]["phase"] in {"Failed", "Error"}
    messages = [n.get("message", "") for n in workflow["status"]["nodes"].values()]
    assert (
        "failed to load artifact 'sales': artifact key 'datastore/sales/latest.csv' does not exist"
        in messages
    )


async def test_a_missing_secret_fails_the_step_naming_the_key_only(
    open_engine: EngineFactory, settings: LocalEngineSettings
) -> None:
    manifest = _load("nightly-report.yaml", settings.artifacts_root)
    _place_sales(settings.artifacts_root)
    # No secret store: the step cannot read REPORT_API_KEY and fails, naming it.
    clock = ManualClock(datetime(2026, 3, 1, 2, 29, 30, tzinfo=UTC))
    async with open_engine(clock=clock, secrets=EXECUTION_SECRETS) as engine:
        await engine.create_cron_workflow(manifest)
        await clock.advance(60)
        await engine.crons.tick()
        [child] = await engine.list_workflows("tender.io/deployment=nightly-report")
        workflow = await engine.wait_for_workflow(child["metadata"]["name"])
    assert workflow["status"]["phase"] in {"Failed", "Error"}
    messages = [n.get("message", "") for n in workflow["status"]["nodes"].values()]
    assert any("REPORT_API_KEY" in m for m in messages), messages
