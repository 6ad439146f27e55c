"""What a DAG or a steps template keeps while its children run: their results, the scopes the
children read (``tasks.X...`` or ``steps.X...``), and the template's own ``parallelism``."""

from __future__ import annotations

import asyncio

from gateway.engines.base import Manifest
from gateway.engines.local.context import Call, Execute, WorkflowRun
from gateway.engines.local.inputs import input_scope
from gateway.engines.local.results import result_scopes

__all__ = ["ChildrenRun"]


class ChildrenRun:
    prefix = ""  # "tasks" for a DAG, "steps" for a steps template

    def __init__(
        self, run: WorkflowRun, node: Manifest, template: Manifest, call: Call, execute: Execute
    ) -> None:
        self.run, self.node, self.template = run, node, template
        self.call, self.execute = call, execute
        self.results: dict[str, Manifest] = {}
        inputs = node.get("inputs", {})
        self.base_scope = {**run.scope, **input_scope(inputs)}
        self.base_artifacts = {
            f"inputs.artifacts.{a['name']}": a for a in inputs.get("artifacts", [])
        }
        limit = template.get("parallelism")
        self.slots = asyncio.Semaphore(int(limit)) if limit else None

    def scopes(self) -> tuple[dict[str, str], dict[str, Manifest]]:
        scope, artifacts = result_scopes(self.run, self.prefix, self.results)
        globals_ = {
            f"workflow.outputs.artifacts.{k}": v for k, v in self.run.global_artifacts.items()
        }
        return {**self.base_scope, **scope}, {**globals_, **self.base_artifacts, **artifacts}
