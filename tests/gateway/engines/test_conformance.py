"""Argo's own examples, run unchanged on the LocalEngine, with what Argo's docs say they do.

The examples are read from tests/argo/examples (vendored) or ../shared/argo/examples.
Examples with random outcomes (coin flips, random exit codes) assert their structure for
every outcome. The refused examples are listed, with reasons, in gateway/engines/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.engines.local.support import WORKFLOW, check_supported
from tests.gateway.engines.engine_manifests import EngineFactory

_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "argo" / "examples",
    Path("/work/shared/argo/examples"),
]
EXAMPLES = next((path for path in _CANDIDATES if path.is_dir()), None)
pytestmark = pytest.mark.skipif(EXAMPLES is None, reason="Argo's examples folder is absent")

Workflow = dict[str, Any]
CHECKS: dict[str, Callable[[Workflow], None]] = {}


def check(name: str) -> Callable[[Callable[[Workflow], None]], Callable[[Workflow], None]]:
    def register(function: Callable[[Workflow], None]) -> Callable[[Workflow], None]:
        CHECKS[name] = function
        return function

    return register


def _by_display(workflow: Workflow) -> dict[str, dict[str, Any]]:
    return {node["displayName"]: node for node in workflow["status"]["nodes"].values()}


def _result(node: dict[str, Any]) -> str:
    return str(node.get("outputs", {}).get("result", ""))


def _phases(workflow: Workflow) -> dict[str, str]:
    return {name: node["phase"] for name, node in _by_display(workflow).items()}


@check("hello-world")
def _hello_world(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"
    assert _result(wf["status"]["nodes"][wf["metadata"]["name"]]) == "hello world"


@check("title-and-description-with-markdown")
def _title(wf: Workflow) -> None:
    _hello_world(wf)


@check("arguments-parameters")
def _arguments_parameters(wf: Workflow) -> None:
    root = wf["status"]["nodes"][wf["metadata"]["name"]]
    assert wf["status"]["phase"] == "Succeeded"
    assert root["inputs"]["parameters"] == [{"name": "message", "value": "hello world"}]
    assert _result(root) == "hello world"


@check("global-parameters")
def _global_parameters(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"
    assert _result(wf["status"]["nodes"][wf["metadata"]["name"]]) == "hello world"


@check("steps")
def _steps(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert {n: _result(nodes[n]) for n in ("hello1", "hello2a", "hello2b")} == {
        "hello1": "hello1",
        "hello2a": "hello2a",
        "hello2b": "hello2b",
    }
    assert nodes["[0]"]["type"] == nodes["[1]"]["type"] == "StepGroup"
    assert nodes["hello1"]["children"] == [nodes["[1]"]["id"]]


@check("dag-diamond")
def _dag_diamond(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert {n: _result(nodes[n]) for n in "ABCD"} == {n: n for n in "ABCD"}
    assert sorted(nodes["A"]["children"]) == sorted([nodes["B"]["id"], nodes["C"]["id"]])
    assert nodes["B"]["children"] == nodes["C"]["children"] == [nodes["D"]["id"]]
    assert nodes["D"]["startedAt"] >= max(nodes["B"]["finishedAt"], nodes["C"]["finishedAt"])


@check("dag-multiroot")
def _dag_multiroot(wf: Workflow) -> None:
    nodes = _by_display(wf)
    root = wf["status"]["nodes"][wf["metadata"]["name"]]
    assert wf["status"]["phase"] == "Succeeded"
    assert sorted(root["children"]) == sorted([nodes["A"]["id"], nodes["B"]["id"]])
    assert nodes["D"]["startedAt"] >= nodes["B"]["finishedAt"]


@check("dag-nested")
def _dag_nested(wf: Workflow) -> None:
    pods = [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
    assert wf["status"]["phase"] == "Succeeded"
    assert sorted(_result(p) for p in pods) == sorted(a + b for a in "ABCD" for b in "ABCD")
    assert sum(1 for n in wf["status"]["nodes"].values() if n["type"] == "DAG") == 5
    assert wf["status"]["progress"] == "16/16"


@check("dag-enhanced-depends")
def _dag_enhanced_depends(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"
    assert _phases(wf) | {wf["metadata"]["name"]: "Succeeded"} == {
        wf["metadata"]["name"]: "Succeeded",
        "A": "Succeeded",
        "B": "Succeeded",
        "C": "Failed",
        "should-execute-1": "Succeeded",
        "should-execute-2": "Succeeded",
        "should-not-execute": "Omitted",
        "should-execute-3": "Succeeded",
    }


@check("dag-continue-on-fail")
def _dag_continue_on_fail(wf: Workflow) -> None:
    phases = _phases(wf)
    assert wf["status"]["phase"] == "Failed"
    assert {n: phases[n] for n in "ABCDEFG"} == {
        "A": "Succeeded",
        "B": "Failed",
        "C": "Succeeded",
        "D": "Succeeded",
        "E": "Failed",
        "F": "Succeeded",
        "G": "Omitted",
    }


@check("output-parameter")
def _output_parameter(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert nodes["generate-parameter"]["outputs"]["parameters"][0]["value"] == "hello world"
    assert _result(nodes["consume-parameter"]) == "hello world"


def _random_number_printed(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    number = _result(nodes["generate"])
    assert 1 <= int(number) <= 100
    assert _result(nodes["print"]) == f"result was: {number}"


CHECKS["scripts-python"] = _random_number_printed
CHECKS["scripts-bash"] = _random_number_printed


def _retry_shape(wf: Workflow, limit: int) -> None:
    name = wf["metadata"]["name"]
    retry = wf["status"]["nodes"][name]
    attempts = [wf["status"]["nodes"][child] for child in retry["children"]]
    assert retry["type"] == "Retry"
    assert [a["name"] for a in attempts] == [f"{name}({i})" for i in range(len(attempts))]
    assert all(a["phase"] == "Failed" for a in attempts[:-1])
    assert retry["phase"] == attempts[-1]["phase"] == wf["status"]["phase"]
    if retry["phase"] == "Succeeded":
        assert len(attempts) <= limit + 1
    else:
        assert len(attempts) == limit + 1
        assert retry["message"] == "No more retries left"


@check("retry-container")
def _retry_container(wf: Workflow) -> None:
    _retry_shape(wf, 10)


@check("retry-script")
def _retry_script(wf: Workflow) -> None:
    _retry_shape(wf, 10)


@check("retry-container-to-completion")
def _retry_to_completion(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"  # no limit: retried until it exits 0


@check("retry-on-error")
def _retry_on_error(wf: Workflow) -> None:
    _retry_shape(wf, 2)


@check("retry-with-steps")
def _retry_with_steps(wf: Workflow) -> None:
    retries = [n for n in wf["status"]["nodes"].values() if n["type"] == "Retry"]
    failed = [n for n in retries if n["phase"] == "Failed"]
    assert wf["status"]["phase"] == ("Failed" if failed else "Succeeded")
    assert {n["displayName"] for n in retries} <= {"hello1", "hello2a", "hello2b"}


@check("exit-handlers")
def _exit_handlers(wf: Workflow) -> None:
    name = wf["metadata"]["name"]
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Failed"
    assert nodes[f"{name}.onExit"]["phase"] == "Succeeded"
    assert nodes["celebrate"]["phase"] == "Skipped"
    assert _result(nodes["cry"]) == "boohoo!"
    assert _result(nodes["notify"]).startswith(f"send e-mail: {name} Failed")


@check("exit-handler-dag-level")
def _exit_handler_dag_level(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    for task in "ABCD":
        assert _result(nodes[f"{task}.onExit"]) == "task cleanup"
        assert nodes[f"{task}.onExit"]["id"] in nodes[task]["children"]


@check("exit-handler-step-level")
def _exit_handler_step_level(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert {_result(nodes[f"{s}.onExit"]) for s in ("hello1", "hello2a", "hello2b")} == {
        "step cleanup"
    }


@check("template-on-exit")
def _template_on_exit(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert _result(nodes["stepA.onExit"]) == _result(nodes["stepB.onExit"]) == "goodbye world"


@check("exit-handler-with-param")
def _exit_handler_with_param(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert nodes["step-1.onExit"]["inputs"]["parameters"] == [
        {"name": "message", "value": "hello world"}
    ]
    assert _result(nodes["step-1.onExit"]) == "hello world"


@check("exit-code-output-variable")
def _exit_code_output_variable(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert nodes["failing-container"]["phase"] == "Failed"
    assert _result(nodes["echo-container"]) == "Exit code was: 123"


@check("continue-on-fail")
def _continue_on_fail(wf: Workflow) -> None:
    phases = _phases(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert {n: phases[n] for n in "ABCD"} == {
        "A": "Succeeded",
        "B": "Succeeded",
        "C": "Failed",
        "D": "Succeeded",
    }


@check("status-reference")
def _status_reference(wf: Workflow) -> None:
    phases = _phases(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert (phases["flakey-container"], phases["failed"], phases["succeeded"]) == (
        "Failed",
        "Succeeded",
        "Skipped",
    )


def _coin(wf: Workflow, flip: str = "flip-coin") -> None:
    nodes = _by_display(wf)
    side = _result(nodes[flip])
    other = "tails" if side == "heads" else "heads"
    assert side in ("heads", "tails")
    assert nodes[other]["phase"] == "Skipped"
    assert nodes[other]["message"] == f"when '{side} == {other}' evaluated false"


@check("coinflip")
def _coinflip(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"
    _coin(wf)
    assert _result(_by_display(wf)[_result(_by_display(wf)["flip-coin"])]).startswith("it was")


@check("coinflip-recursive")
def _coinflip_recursive(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"
    flips = [n for n in wf["status"]["nodes"].values() if n["displayName"] == "flip-coin"]
    assert [_result(n) for n in flips].count("heads") == 1  # it recurses until heads


@check("conditionals-complex")
def _conditionals_complex(wf: Workflow) -> None:
    nodes = _by_display(wf)
    first, second = _result(nodes["flip-coin"]), _result(nodes["flip-again"])
    expected = (first, second) in (("heads", "tails"), ("tails", "tails"))
    assert wf["status"]["phase"] == "Succeeded"
    assert (nodes["complex-condition"]["phase"] == "Succeeded") is expected
    assert nodes["heads-regex"]["phase"] == ("Succeeded" if second == "heads" else "Skipped")


@check("artifact-passing")
def _artifact_passing(wf: Workflow) -> None:
    nodes = _by_display(wf)
    artifact = nodes["generate-artifact"]["outputs"]["artifacts"][0]
    assert wf["status"]["phase"] == "Succeeded"
    assert artifact["s3"]["key"].endswith("/hello-art.tgz")
    assert _result(nodes["consume-artifact"]) == "hello world"


@check("global-outputs")
def _global_outputs(wf: Workflow) -> None:
    outputs = wf["status"]["outputs"]
    results = sorted(
        _result(n)
        for n in wf["status"]["nodes"].values()
        if n["displayName"] in ("consume-global-param", "consume-global-art")
    )
    assert wf["status"]["phase"] == "Succeeded"
    assert outputs["parameters"] == [{"name": "my-global-param", "value": "hello world"}]
    assert [a["name"] for a in outputs["artifacts"]] == ["my-global-art"]
    assert results == ["hello world"] * 4  # run in the main steps and again in the exit handler


@check("nested-workflow")
def _nested_workflow(wf: Workflow) -> None:
    assert wf["status"]["phase"] == "Succeeded"
    consumers = [n for n in wf["status"]["nodes"].values() if n["displayName"] == "consume"]
    assert len(consumers) == 2
    for consumer in consumers:
        assert "hello world" in _result(consumer)


@check("recursive-for-loop")
def _recursive_for_loop(wf: Workflow) -> None:
    counters = sorted(
        int(_result(n))
        for n in wf["status"]["nodes"].values()
        if n["displayName"] == "iterate-counter"
    )
    assert wf["status"]["phase"] == "Succeeded"
    assert counters == list(range(1, len(counters) + 1))
    assert len(counters) >= 1


@check("template-defaults")
def _template_defaults(wf: Workflow) -> None:
    retries = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Retry"}
    name = wf["metadata"]["name"]
    assert {name, "retry-backoff"} <= set(retries)  # templateDefaults gave every template one
    assert len(retries["retry-backoff"]["children"]) <= 3
    assert wf["status"]["phase"] == retries["retry-backoff"]["phase"]


@check("resubmit")
def _resubmit(wf: Workflow) -> None:
    pods = [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
    failed = [p for p in pods if p["phase"] == "Failed"]
    assert wf["status"]["phase"] == ("Failed" if failed else "Succeeded")
    assert all(p["message"] == "Error (exit code 1)" for p in failed)


@check("exit-handler-with-artifacts")
def _exit_handler_with_artifacts(wf: Workflow) -> None:
    nodes = _by_display(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert nodes["step-1"]["outputs"]["artifacts"][0]["name"] == "result"
    assert _result(nodes["step-1.onExit"]) == "Welcome"


@check("dag-coinflip")
def _dag_coinflip(wf: Workflow) -> None:
    nodes = wf["status"]["nodes"].values()
    flips = [n for n in nodes if n["displayName"] == "flip-coin"]
    assert wf["status"]["phase"] == "Succeeded"
    assert [_result(n) for n in flips].count("heads") == 4  # each of A..D recurses until heads
    assert {n["displayName"]: n["type"] for n in nodes if n["displayName"] in "ABCD"} == {
        "A": "Steps",
        "B": "Steps",
        "C": "Steps",
        "D": "Steps",
    }


def _first_workflow(name: str) -> dict[str, Any]:
    assert EXAMPLES is not None
    documents = yaml.safe_load_all((EXAMPLES / f"{name}.yaml").read_text())
    return next(d for d in documents if isinstance(d, dict) and d.get("kind") == "Workflow")


@pytest.mark.parametrize("example", sorted(CHECKS))
async def test_example(open_engine: EngineFactory, example: str) -> None:
    async with open_engine(max_processes=4) as engine:
        submitted = await engine.submit_workflow(_first_workflow(example))
        done = await engine.wait_for_workflow(submitted["metadata"]["name"])
    assert not [n for n in done["status"]["nodes"].values() if n["phase"] in ("Running", "Pending")]
    assert re.fullmatch(r"\d+/\d+", done["status"]["progress"])
    CHECKS[example](done)


def test_at_least_twenty_examples_run() -> None:
    assert len(CHECKS) >= 20
    for example in CHECKS:
        check_supported(_first_workflow(example), WORKFLOW)
