"""Golden files: each document in cases/ compiles to the manifests next to it.

Set TENDER_REGENERATE=1 to rewrite them; review their diffs like code.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import (
    Deployment,
    Pipeline,
    Run,
    compile_deployment,
    compile_document,
    compile_run,
    dump_yaml,
    parse_document,
)
from compiler.manifests import CompileOptions
from compiler.values import decode_parameter
from templates import runner_source

CASES = Path(__file__).parent / "cases"
DOCUMENTS = sorted(p for p in CASES.glob("*.yaml") if not p.name.endswith(".argo.yaml"))
Check = Callable[[dict[str, Any]], None]


def golden_path(document: Path) -> Path:
    return document.with_suffix(".argo.yaml")


def _without_runner(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with the runner's source elided, so that golden files need not repeat it."""
    manifest = copy.deepcopy(manifest)
    spec = manifest["spec"].get("workflowSpec", manifest["spec"])
    for parameter in spec["arguments"]["parameters"]:
        if parameter["name"] == "tender-runner":
            assert parameter["value"] == runner_source()
            parameter["value"] = "<the source of templates/runner.py>"
    return manifest


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.stem)
def test_golden(document: Path, assert_valid_manifest: Check) -> None:
    manifests = compile_document(parse_document(document.read_text()))
    for manifest in manifests:
        assert_valid_manifest(manifest)
    text = dump_yaml([_without_runner(m) for m in manifests])
    golden = golden_path(document)
    if os.environ.get("TENDER_REGENERATE"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden.name}: run with TENDER_REGENERATE=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.stem)
def test_same_input_same_bytes(document: Path) -> None:
    first = dump_yaml(compile_document(parse_document(document.read_text())))
    second = dump_yaml(compile_document(parse_document(document.read_text())))
    assert first == second


def _spec(document: str) -> dict[str, Any]:
    manifests = compile_document(parse_document((CASES / document).read_text()))
    spec: dict[str, Any] = manifests[0]["spec"]
    return spec.get("workflowSpec", spec)


def _template(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in spec["templates"] if t["name"] == name)


def _arguments(spec: dict[str, Any]) -> dict[str, str | None]:
    return {p["name"]: p.get("value") for p in spec["arguments"]["parameters"]}


def test_no_constant_reaches_argo_as_a_tag() -> None:
    spec = _spec("all-types-run.yaml")
    task = _template(spec, "main")["dag"]["tasks"][0]
    constant = next(p for p in task["arguments"]["parameters"] if p["name"] == "tag")
    assert "{{" not in constant["value"]
    assert decode_parameter(constant["value"]) == "{{inputs.parameters.s}}"
    arguments = _arguments(spec)
    for name, value in arguments.items():
        if name != "tender-runner":
            assert value is not None
            assert "{{" not in value, name
    assert decode_parameter(arguments["s"] or "") == "{{workflow.name}} is not expanded"
    assert decode_parameter(arguments["j"] or "") == {"k": [1, None, "{{x}}"]}


def test_run_inputs_defaults_and_absent_values() -> None:
    arguments = _arguments(_spec("all-types-run.yaml"))
    assert decode_parameter(arguments["n"] or "") == 1.5
    assert arguments["maybe"] == ""
    assert arguments["f"] == "inputs/0123/f"
    assert arguments["optional_file"] == "inputs/absent"
    assert "tag" not in arguments
    assert "nothing" not in arguments


def test_runner_source_travels_once() -> None:
    spec = _spec("diamond-run.yaml")
    assert _arguments(spec)["tender-runner"] == runner_source()
    sources = {t["script"]["source"] for t in spec["templates"] if "script" in t}
    assert sources == {"{{workflow.parameters.tender-runner}}"}


def test_steps_are_wired_by_their_sources() -> None:
    spec = _spec("diamond-run.yaml")
    tasks = {t["name"]: t for t in _template(spec, "main")["dag"]["tasks"]}
    assert "depends" not in tasks["start"]
    assert tasks["left"]["depends"] == "start"
    assert tasks["join"]["depends"] == "left && right"
    join_args = tasks["join"]["arguments"]
    # Optional and unarchived on the argument itself: Argo keeps only the template's path.
    assert join_args["artifacts"] == [
        {
            "name": "blob",
            "from": "{{tasks.left.outputs.artifacts.blob}}",
            "optional": True,
            "archive": {"none": {}},
        }
    ]
    assert {"name": "b", "value": "{{tasks.right.outputs.parameters.value}}"} in join_args[
        "parameters"
    ]
    right = {p["name"]: p["value"] for p in tasks["right"]["arguments"]["parameters"]}
    assert right["seed"] == "{{workflow.parameters.seed}}"
    assert spec["activeDeadlineSeconds"] == 120


def test_pipeline_outputs_are_the_entrypoint_outputs() -> None:
    outputs = _template(_spec("diamond-run.yaml"), "main")["outputs"]
    assert outputs["parameters"] == [
        {"name": "result", "valueFrom": {"parameter": "{{tasks.join.outputs.parameters.total}}"}}
    ]
    assert outputs["artifacts"][0]["from"] == "{{tasks.left.outputs.artifacts.blob}}"


def test_endpoint_parameters_follow_the_mapping() -> None:
    manifest = compile_document(parse_document((CASES / "endpoint.yaml").read_text()))[0]
    assert manifest["kind"] == "WorkflowTemplate"
    assert manifest["metadata"]["name"] == "scorer-v1"
    arguments = _arguments(manifest["spec"])
    assert arguments["features"] is None  # required: each call must give it
    assert arguments["extra"] is None
    assert decode_parameter(arguments["name"] or "") == "unnamed"
    assert decode_parameter(arguments["threshold"] or "") == 0.5
    assert arguments["upload"] == "inputs/absent"
    assert {"model", "token", "mode", "label"}.isdisjoint(arguments)
    labels = manifest["spec"]["workflowMetadata"]["labels"]
    assert labels == {
        "tender.io/pipeline": "scorer",
        "tender.io/deployment": "scorer-v1",
        "tender.io/trigger": "endpoint",
    }


def test_secrets_are_references_never_values() -> None:
    options = CompileOptions(secret_name="team-env")
    document = parse_document((CASES / "endpoint.yaml").read_text())
    assert document.deployment is not None
    manifest = compile_deployment(document.pipeline, document.deployment, options)
    script = _template(manifest["spec"], "step-scorer")["script"]
    by_name = {e["name"]: e for e in script["env"]}
    assert by_name["TENDER_INPUT_token"] == {
        "name": "TENDER_INPUT_token",
        "valueFrom": {"secretKeyRef": {"name": "team-env", "key": "SCORER_TOKEN"}},
    }
    # Every variable, by reference to the whole Secret: one added after the deployment too.
    assert script["envFrom"] == [{"secretRef": {"name": "team-env", "optional": True}}]
    step = json.loads(by_name["TENDER_STEP"]["value"])
    token = next(i for i in step["inputs"] if i["name"] == "token")
    assert token == {
        "name": "token",
        "data_type": "string",
        "env": "TENDER_INPUT_token",
        "encoding": "raw",
        "variable": "SCORER_TOKEN",  # the user's own name, for the runner's errors
    }


def test_datastore_destinations_become_output_keys() -> None:
    spec = _template(_spec("endpoint.yaml"), "step-scorer")
    plot = next(a for a in spec["outputs"]["artifacts"] if a["name"] == "plot")
    created = "{{workflow.creationTimestamp.%s}}"
    stamp = "".join(created % c for c in "Ymd") + "_" + "".join(created % c for c in "HMS")
    assert plot["s3"]["key"] == f"datastore/plots/{stamp}-{{{{workflow.name}}}}.png"
    debug = next(a for a in spec["outputs"]["artifacts"] if a["name"] == "debug")
    assert debug["s3"]["key"] == "executions/{{workflow.name}}/scorer/debug"
    model = next(a for a in spec["inputs"]["artifacts"] if a["name"] == "model")
    assert "optional" not in model  # a mapped datastore object must exist


def test_periodic_is_a_cron_workflow_in_utc() -> None:
    manifest = compile_document(parse_document((CASES / "periodic.yaml").read_text()))[0]
    spec = manifest["spec"]
    assert manifest["kind"] == "CronWorkflow"
    assert spec["schedules"] == ["*/15 * * * *"]
    assert spec["timezone"] == "UTC"
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["workflowMetadata"]["labels"]["tender.io/trigger"] == "periodic"


def test_serial_periodic_deployments_forbid_overlap() -> None:
    document = parse_document((CASES / "periodic.yaml").read_text())
    assert document.deployment is not None
    serial = document.deployment.model_copy(update={"enable_parallel_executions": False})
    manifest = compile_deployment(document.pipeline, serial)
    assert manifest["spec"]["concurrencyPolicy"] == "Forbid"


def test_long_names_are_shortened_deterministically() -> None:
    manifest = compile_document(parse_document((CASES / "long-names.yaml").read_text()))[0]
    name = manifest["metadata"]["name"]
    assert len(name) == 52
    assert name.startswith("a-deployment-name-that-is-exactly-sixty-thre")
    pipeline = Pipeline.model_validate(
        {"pipeline_name": "p" * 63, "function_path": "f.py", "function_name": "f"}
    )
    run = compile_run(pipeline, Run())
    generate_name = run["metadata"]["generateName"]
    assert len(generate_name) == 58
    assert generate_name.endswith("-")
    assert run["metadata"]["labels"]["tender.io/pipeline"] == "p" * 63


def test_endpoint_inputs_default_to_pipeline_names(assert_valid_manifest: Check) -> None:
    pipeline = Pipeline.model_validate(
        {
            "pipeline_name": "p",
            "function_path": "f.py",
            "function_name": "f",
            "inputs": [{"name": "x", "data_type": "number"}],
            "outputs": [{"name": "y", "data_type": "string"}],
        }
    )
    deployment = Deployment.model_validate({"name": "d", "execution_rule": "endpoint"})
    manifest = compile_deployment(pipeline, deployment)
    assert_valid_manifest(manifest)
    assert _arguments(manifest["spec"])["x"] is None
    main = _template(manifest["spec"], "main")
    assert [p["name"] for p in main["outputs"]["parameters"]] == ["y"]


def test_yaml_round_trips() -> None:
    manifests = compile_document(parse_document((CASES / "diamond-run.yaml").read_text()))
    assert list(yaml.safe_load_all(dump_yaml(manifests))) == manifests
