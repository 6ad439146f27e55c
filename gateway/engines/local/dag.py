"""DAG templates: tasks started as their `depends` allow, and the DAG's phase assessed as
Argo's `assessDAGPhase` does (workflow/controller/dag.go).

`failFast` (the default): after a task fails and no `depends` names its failure
(`B.Failed`, `B.Errored`, ...), no new task starts, except tasks whose `depends` names a result
explicitly; tasks whose `depends` is false are still marked `Omitted`.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.engines.base import Manifest
from gateway.engines.local.children import ChildrenRun
from gateway.engines.local.context import Call, Execute, WorkflowRun
from gateway.engines.local.depends import DependencyState, DependsExpression, parse_depends
from gateway.engines.local.inputs import BindingError, resolve_arguments
from gateway.engines.local.results import (
    exit_hook_of,
    outbound_nodes,
    result_scopes,
    run_exit_hook,
    template_outputs,
)
from gateway.engines.local.status import is_failure
from gateway.engines.local.templating import UnresolvedTagError, substitute
from gateway.engines.local.when import evaluate_when

__all__ = ["depends_of", "run_dag"]


def depends_of(task: Manifest) -> DependsExpression | None:
    if "depends" in task:
        return parse_depends(str(task["depends"]))
    if task.get("dependencies"):
        return parse_depends(" && ".join(task["dependencies"]))
    return None


class _Dag(ChildrenRun):
    prefix = "tasks"

    def __init__(
        self, run: WorkflowRun, node: Manifest, template: Manifest, call: Call, execute: Execute
    ) -> None:
        super().__init__(run, node, template, call, execute)
        self.tasks: dict[str, Manifest] = {t["name"]: t for t in template["dag"]["tasks"]}
        self.depends = {name: depends_of(task) for name, task in self.tasks.items()}
        self.fail_fast = str(template["dag"].get("failFast", True)).lower() != "false"

    def task_name(self, name: str) -> str:
        return f"{self.node['name']}.{name}"

    def connect(self, name: str) -> None:
        child_id = self.run.node_id(self.task_name(name))
        expression = self.depends[name]
        if expression is None:
            self.run.add_child(self.node["id"], child_id)
            return
        for dependency in sorted(expression.tasks):
            for parent in outbound_nodes(self.run, self.results[dependency]):
                self.run.add_child(parent, child_id)

    def handles_failures(self, name: str) -> bool:
        """A task whose `depends` names a result (`B.Failed`) still starts after a failure."""
        expression = self.depends[name]
        return expression is not None and bool(expression.explicit)

    def is_handled(self, name: str) -> bool:
        return any(e is not None and name in e.explicit for e in self.depends.values())

    def ready(self, name: str) -> bool | None:
        """True to run, False to omit, None while dependencies are still running."""
        expression = self.depends[name]
        if expression is None:
            return True
        if not expression.tasks <= self.results.keys():
            return None
        states = {
            task: DependencyState(
                self.results[task]["phase"],
                [
                    self.run.nodes[c]["phase"]
                    for c in self.results[task].get("children", [])
                    if self.results[task]["type"] == "Retry"
                ],
            )
            for task in expression.tasks
        }
        return expression.evaluate(states)


async def run_dag(
    run: WorkflowRun, node: Manifest, template: Manifest, call: Call, execute: Execute
) -> None:
    dag = _Dag(run, node, template, call, execute)
    pending = list(dag.tasks)
    running: dict[asyncio.Task[Manifest], str] = {}
    halted = False
    try:
        while True:
            halted = _schedule(dag, pending, running, halted)
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                name = running.pop(finished)
                dag.results[name] = finished.result()
                if dag.fail_fast and is_failure(dag.results[name]["phase"]):
                    halted = halted or not dag.is_handled(name)
    except asyncio.CancelledError:
        # `asyncio.wait` leaves its tasks running: the tasks' steps must die with the DAG.
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    _finish(dag)


def _schedule(
    dag: _Dag, pending: list[str], running: dict[asyncio.Task[Manifest], str], halted: bool
) -> bool:
    """Start or omit every pending task whose dependencies are done; repeat until stable."""
    progressed = True
    while progressed:
        progressed = False
        for name in list(pending):
            decision = dag.ready(name)
            if decision is None:
                continue
            pending.remove(name)
            progressed = True
            if decision is False:
                dag.connect(name)
                dag.results[name] = _leaf(
                    dag, name, "Omitted", "omitted: depends condition not met"
                )
            elif not ((halted and not dag.handles_failures(name)) or dag.call.cancel.is_set()):
                dag.connect(name)
                running[asyncio.create_task(_run_task(dag, name))] = name
    return halted


def _leaf(dag: _Dag, name: str, phase: str, message: str) -> Manifest:
    node = dag.run.add_node(
        dag.task_name(name),
        name,
        "Skipped",
        template_name=dag.tasks[name]["template"],
        boundary_id=dag.node["id"],
        phase=phase,
    )
    return dag.run.finish(node, phase, message)


async def _run_task(dag: _Dag, name: str) -> Manifest:
    task = dag.tasks[name]
    scope, artifact_scope = dag.scopes()
    try:
        if "when" in task:
            condition = substitute(str(task["when"]), scope)
            if not evaluate_when(condition):
                return _leaf(dag, name, "Skipped", f"when '{condition}' evaluated false")
        arguments = resolve_arguments(task.get("arguments"), scope, artifact_scope)
    except (BindingError, UnresolvedTagError, ValueError) as exc:
        return _leaf(dag, name, "Error", str(exc))
    call = Call(
        dag.task_name(name),
        name,
        task["template"],
        arguments,
        dag.node["id"],
        dag.call.deadlines,
        dag.call.cancel,
    )
    async with dag.slots or contextlib.nullcontext():
        child = await dag.execute(dag.run, call)
    hook_scope, hook_artifacts = result_scopes(dag.run, "tasks", {name: child})
    await run_exit_hook(
        dag.run,
        exit_hook_of(task),
        child,
        scopes=({**scope, **hook_scope}, {**artifact_scope, **hook_artifacts}),
        call=call,
        execute=dag.execute,
    )
    return child


def _targets(dag: _Dag) -> list[str]:
    used = {t for e in dag.depends.values() if e is not None for t in e.tasks}
    return [name for name in dag.tasks if name not in used]


def _assess(dag: _Dag, targets: list[str]) -> str:
    """The worst phase reaching a target task: its own, or for an omitted target the worst
    phase of the dependencies that caused the omission (Argo's `assessDAGPhase` "branch phase")."""
    if not all(name in dag.results for name in targets):
        return "Failed"  # a target never ran: the DAG was halted by a failure or a stop
    return _worst([_branch_phase(dag, name) for name in targets])


def _branch_phase(dag: _Dag, name: str) -> str:
    node = dag.results[name]
    expression = dag.depends[name]
    if node["phase"] != "Omitted" or expression is None:
        return str(node["phase"])
    return _worst([_branch_phase(dag, d) for d in expression.tasks if d in dag.results])


def _worst(phases: list[str]) -> str:
    for phase in ("Error", "Failed"):
        if phase in phases:
            return phase
    return "Succeeded"


def _finish(dag: _Dag) -> None:
    run, node = dag.run, dag.node
    targets = _targets(dag)
    node["outboundNodes"] = [
        o for name in targets if name in dag.results for o in outbound_nodes(run, dag.results[name])
    ]
    phase = _assess(dag, targets)
    if dag.call.cancel.is_set() and phase != "Succeeded":
        run.finish(node, "Failed", run.node_stop_message)
        return
    message = _failure_message(dag) if phase != "Succeeded" else None
    if phase == "Succeeded":
        scope, artifact_scope = dag.scopes()
        try:
            outputs = template_outputs(run, dag.template, scope, artifact_scope)
        except (BindingError, UnresolvedTagError) as exc:
            phase, message, outputs = "Error", str(exc), {}
        if outputs:
            node["outputs"] = outputs
    run.finish(node, phase, message)


def _failure_message(dag: _Dag) -> str | None:
    for result in dag.results.values():
        if is_failure(result["phase"]):
            return f"child '{result['id']}' failed"
    return None
