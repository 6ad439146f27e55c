"""The state one running Workflow carries, and the engine-wide services its steps use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.engines.base import Manifest
from gateway.engines.local.artifacts import ArtifactRepository
from gateway.engines.local.clock import Clock
from gateway.engines.local.scripts import CompiledScripts
from gateway.engines.local.settings import InterpreterResolver, LocalEngineSettings, SecretLookup
from gateway.engines.local.status import finish_node, new_node
from gateway.engines.local.unpacked import UnpackedArchives
from gateway.engines.naming import node_id
from gateway.store.records import LogLine

__all__ = ["Call", "Deadline", "EngineServices", "Execute", "ProcessBook", "WorkflowRun"]


@dataclass(frozen=True)
class Deadline:
    at: float  # event loop time
    message: str


@dataclass(frozen=True)
class Call:
    """One use of a template: by a task, a step, a retry, an exit handler or the entrypoint."""

    node_name: str
    display_name: str
    template_name: str
    arguments: Manifest  # already resolved (`inputs.resolve_arguments`)
    boundary_id: str | None
    deadlines: tuple[Deadline, ...]
    cancel: asyncio.Event


Execute = Callable[["WorkflowRun", Call], Awaitable[Manifest]]


class ProcessBook(Protocol):
    """Where the engine records the process groups of running steps (the store)."""

    def started(self, run: WorkflowRun, node_id: str, pgid: int, started_at: datetime) -> None: ...


@dataclass(frozen=True)
class EngineServices:
    settings: LocalEngineSettings
    clock: Clock
    secrets: SecretLookup | None
    resolve_interpreter: InterpreterResolver
    processes: asyncio.Semaphore
    save_logs: Callable[[Sequence[LogLine]], Awaitable[None]]
    artifacts: ArtifactRepository
    process_book: ProcessBook
    unpacked: UnpackedArchives
    scripts: CompiledScripts


@dataclass
class WorkflowRun:
    """A Workflow being executed: `workflow["status"]` is updated in place as nodes progress."""

    workflow: Manifest
    spec: Manifest  # the effective spec: a referenced template resolved, templateDefaults applied
    services: EngineServices
    on_change: Callable[[], None]
    templates: dict[str, Manifest] = field(default_factory=dict)
    scope: dict[str, str] = field(default_factory=dict)  # workflow-wide variables
    global_artifacts: dict[str, Manifest] = field(default_factory=dict)
    pod_names: dict[str, str] = field(default_factory=dict)
    live_logs: dict[str, list[LogLine]] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_message: str | None = None
    node_stop_message: str | None = None
    parallelism: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        self.templates = {template["name"]: template for template in self.spec["templates"]}
        if self.spec.get("parallelism"):
            self.parallelism = asyncio.Semaphore(int(self.spec["parallelism"]))

    @property
    def name(self) -> str:
        return str(self.workflow["metadata"]["name"])

    @property
    def status(self) -> Manifest:
        status: Manifest = self.workflow["status"]
        return status

    @property
    def nodes(self) -> dict[str, Manifest]:
        nodes: dict[str, Manifest] = self.status.setdefault("nodes", {})
        return nodes

    def node_id(self, node_name: str) -> str:
        return node_id(self.name, node_name)

    def add_node(
        self,
        name: str,
        display_name: str,
        node_type: str,
        *,
        template_name: str | None,
        boundary_id: str | None,
        phase: str = "Running",
    ) -> Manifest:
        node = new_node(
            self.node_id(name),
            name,
            display_name,
            node_type,
            template_name=template_name,
            boundary_id=boundary_id,
            now=self.services.clock.now(),
            phase=phase,
        )
        self.nodes[node["id"]] = node
        self.on_change()
        return node

    def finish(self, node: Manifest, phase: str, message: str | None = None) -> Manifest:
        finish_node(node, phase, self.services.clock.now(), message)
        self.on_change()
        return node

    def add_child(self, parent_id: str, child_id: str) -> None:
        children: list[str] = self.nodes[parent_id].setdefault("children", [])
        if child_id not in children:
            children.append(child_id)

    def request_stop(self, message: str, node_message: str) -> None:
        if not self.stop.is_set():
            self.stop_message = message
            self.node_stop_message = node_message
            self.stop.set()

    def set_global_parameter(self, name: str, value: str) -> None:
        outputs: dict[str, Any] = self.status.setdefault("outputs", {})
        parameters: list[Manifest] = outputs.setdefault("parameters", [])
        parameters[:] = [p for p in parameters if p["name"] != name] + [
            {"name": name, "value": value}
        ]
        self.scope[f"workflow.outputs.parameters.{name}"] = value

    def set_global_artifact(self, name: str, artifact: Manifest) -> None:
        outputs: dict[str, Any] = self.status.setdefault("outputs", {})
        artifacts: list[Manifest] = outputs.setdefault("artifacts", [])
        exported = {**artifact, "name": name}
        artifacts[:] = [a for a in artifacts if a["name"] != name] + [exported]
        self.global_artifacts[name] = exported
