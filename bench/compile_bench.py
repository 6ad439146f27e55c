"""Compile time: tender's compiler beside raw hera building the same Workflow, in one run.

    .venv/bin/python bench/compile_bench.py

For chains (each step reads the previous one's output) and fan-ins (independent steps feeding a
last one) of 1, 10, 100 and 500 steps, prints the median time per compile of
``compile_run`` (validated Pipeline in, manifest dict out) and of building the same Workflow with
hera's high-level classes (Workflow, DAG, Task, Script, Parameter, Artifact) plus ``to_dict()``.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hera.workflows import (
    DAG,
    Artifact,
    Env,
    Parameter,
    S3Artifact,
    Script,
    Task,
    Workflow,
)
from hera.workflows.models import SecretKeySelector, ValueFrom

from compiler import Pipeline, Run, compile_run

SIZES = (1, 10, 100, 500)


def chain(n: int) -> Pipeline:
    steps = [
        {
            "name": f"s{i}",
            "function_path": "src/f.py",
            "function_name": "f",
            "inputs": [
                {"name": "x", "data_type": "number"}
                if i == 0
                else {"name": "x", "data_type": "number", "source": f"s{i - 1}.y"}
            ],
            "outputs": [{"name": "y", "data_type": "number"}],
        }
        for i in range(n)
    ]
    return _pipeline(steps, f"s{n - 1}.y")


def fan_in(n: int) -> Pipeline:
    sources = [
        {
            "name": f"s{i}",
            "function_path": "src/f.py",
            "function_name": "f",
            "inputs": [{"name": "x", "data_type": "number"}],
            "outputs": [{"name": "y", "data_type": "number"}],
        }
        for i in range(n - 1)
    ]
    last = {
        "name": "last",
        "function_path": "src/f.py",
        "function_name": "f",
        "inputs": [{"name": "x", "data_type": "number"}]
        + [{"name": f"x{i}", "data_type": "number", "source": f"s{i}.y"} for i in range(n - 1)],
        "outputs": [{"name": "y", "data_type": "number"}],
    }
    return _pipeline([*sources, last], "last.y")


def _pipeline(steps: list[dict[str, Any]], output: str) -> Pipeline:
    return Pipeline.model_validate(
        {
            "pipeline_name": "bench",
            "inputs": [{"name": "x", "data_type": "number"}],
            "outputs": [{"name": "y", "data_type": "number", "source": output}],
            "steps": steps,
        }
    )


def hera_builder(manifest: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A function building ``manifest`` with hera's high-level classes: the peer to beat.

    The plain data each constructor needs is prepared here, outside the timed call.
    """
    spec = manifest["spec"]
    dag_template, *step_templates = spec["templates"]
    scripts = [_script_arguments(t) for t in step_templates]
    tasks = dag_template["dag"]["tasks"]
    dag_outputs = dag_template["outputs"]["parameters"]

    def build() -> dict[str, Any]:
        built = {a["name"]: Script(**a) for a in scripts}
        dag = DAG(
            name="main",
            tasks=[
                Task(
                    name=t["name"],
                    template=built[t["template"]],
                    depends=t.get("depends"),
                    arguments=[
                        Parameter(name=p["name"], value=p["value"])
                        for p in t["arguments"]["parameters"]
                    ],
                )
                for t in tasks
            ],
            outputs=[
                Parameter(name=p["name"], value_from=ValueFrom(**p["valueFrom"]))
                for p in dag_outputs
            ],
        )
        workflow = Workflow(
            generate_name=manifest["metadata"]["generateName"],
            labels=manifest["metadata"]["labels"],
            annotations=manifest["metadata"]["annotations"],
            entrypoint="main",
            arguments={p["name"]: p["value"] for p in spec["arguments"]["parameters"]},
            templates=[dag, *built.values()],
        )
        result: dict[str, Any] = workflow.to_dict()
        return result

    return build


def _script_arguments(template: dict[str, Any]) -> dict[str, Any]:
    script = template["script"]
    inputs: list[Parameter | Artifact] = [
        Parameter(name=p["name"]) for p in template["inputs"].get("parameters", [])
    ]
    inputs += [
        S3Artifact(name=a["name"], path=a["path"], key=a["s3"]["key"], optional=a.get("optional"))
        for a in template["inputs"]["artifacts"]
    ]
    outputs = [
        Parameter(name=p["name"], value_from=ValueFrom(**p["valueFrom"]))
        for p in template["outputs"]["parameters"]
    ]
    env = [
        Env(name=e["name"], value=e["value"])
        if "value" in e
        else Env(name=e["name"], value_from={"secretKeyRef": SecretKeySelector(**e["valueFrom"])})
        for e in script["env"]
    ]
    return {
        "name": template["name"],
        "image": script["image"],
        "command": script["command"],
        "source": script["source"],
        "env": env,
        "inputs": inputs,
        "outputs": outputs,
    }


def median_ms(function: Callable[[], object], budget_s: float = 2.0) -> float:
    function()  # warm-up
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def without_gc(function: Callable[[], object]) -> Callable[[], object]:
    """The same call with Python's cyclic GC paused: shows what is the compiler's own work."""

    def call() -> object:
        gc.disable()
        try:
            return function()
        finally:
            gc.enable()

    return call


def main() -> None:
    machine = platform.processor() or platform.machine()
    print(f"# compile benchmark, {datetime.now(UTC):%Y-%m-%d}, {machine}, {os.cpu_count()} cores")
    print()
    print(
        "| shape | steps | tender `compile_run` (ms) | raw hera + `to_dict()` (ms) | ratio "
        "| tender per step (ms) | tender, GC paused (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    run = Run(inputs={"x": 1})
    for shape, make in (("chain", chain), ("fan-in", fan_in)):
        for n in SIZES:
            pipeline = make(n)
            manifest = compile_run(pipeline, run)
            ours = median_ms(lambda p=pipeline: compile_run(p, run))
            hera = median_ms(hera_builder(manifest))
            paused = median_ms(without_gc(lambda p=pipeline: compile_run(p, run)))
            print(
                f"| {shape} | {n} | {ours:.2f} | {hera:.2f} | {ours / hera:.2f} "
                f"| {ours / n:.3f} | {paused:.2f} |"
            )


if __name__ == "__main__":
    main()
