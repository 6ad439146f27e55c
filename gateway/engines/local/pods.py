"""A `container` or `script` template run as one local process (Argo's Pod node)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.engines.base import Manifest
from gateway.engines.local.artifacts import ArtifactError, is_archived
from gateway.engines.local.context import Deadline, WorkflowRun
from gateway.engines.local.inputs import input_scope
from gateway.engines.local.paths import PathMap
from gateway.engines.local.process import ProcessOutcome, run_process
from gateway.engines.local.scripts import is_python
from gateway.engines.local.spool import SPOOL_NAME, LogSpool
from gateway.engines.local.templating import UnresolvedTagError, substitute_all
from gateway.engines.naming import pod_name
from gateway.store.records import LogLine

__all__ = ["PodError", "run_pod"]


class PodError(Exception):
    """The pod cannot run or its outputs cannot be saved: the node ends in `phase`."""

    def __init__(self, message: str, phase: str = "Error") -> None:
        super().__init__(message)
        self.phase = phase


@dataclass
class _Pod:
    run: WorkflowRun
    node: Manifest
    template: Manifest
    name: str
    workdir: Path
    paths: PathMap


async def run_pod(
    run: WorkflowRun,
    node: Manifest,
    template: Manifest,
    deadlines: tuple[Deadline, ...],
    cancel: asyncio.Event,
    *,
    retries: int,
) -> None:
    """Run the template's process for `node` and record its phase and outputs on the node."""
    name = pod_name(run.name, template["name"], node["name"])
    run.pod_names[node["id"]] = name
    workdir = run.services.settings.work_dir / run.name / node["id"]
    pod = _Pod(
        run, node, template, name, workdir, PathMap(workdir / "root", _declared_paths(template))
    )
    try:
        phase, message = await _run(pod, deadlines, cancel, retries)
    except PodError as exc:
        phase, message = exc.phase, str(exc)
    finally:
        await _flush_logs(run, node["id"])
        if not run.services.settings.keep_work_dirs:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
    run.finish(node, phase, message)


async def _run(
    pod: _Pod, deadlines: tuple[Deadline, ...], cancel: asyncio.Event, retries: int
) -> tuple[str, str | None]:
    scope = _pod_scope(pod, retries)
    try:
        body = substitute_all(pod.template.get("script") or pod.template["container"], scope)
        outputs = substitute_all(pod.template.get("outputs", {}), scope)
    except UnresolvedTagError as exc:
        raise PodError(str(exc)) from exc
    argv = await asyncio.to_thread(_prepare_workdir, pod, body)
    await _load_inputs(pod)
    env = await _environment(pod, body)
    async with _slot(pod.run, pod.node, cancel):
        outcome = await _start(pod, argv, env, deadlines, cancel)
    pod.node["outputs"] = {"exitCode": str(outcome.exit_code)}
    if outcome.stdout_tail:
        pod.node["outputs"]["result"] = outcome.stdout_tail
    phase, message = _judge(pod.run, outcome, deadlines)
    if phase == "Succeeded":
        await _collect_outputs(pod, outputs)
    return phase, message


def _declared_paths(template: Manifest) -> list[str]:
    inputs, outputs = template.get("inputs", {}), template.get("outputs", {})
    paths = [a.get("path", "") for a in inputs.get("artifacts", [])]
    paths += [a.get("path", "") for a in outputs.get("artifacts", [])]
    paths += [p.get("valueFrom", {}).get("path", "") for p in outputs.get("parameters", [])]
    return [path for path in paths if path]


def _pod_scope(pod: _Pod, retries: int) -> dict[str, str]:
    scope = {**pod.run.scope, **input_scope(pod.node.get("inputs", {}))}
    local = pod.paths.local
    for artifact in pod.template.get("inputs", {}).get("artifacts", []):
        if "path" in artifact:
            scope[f"inputs.artifacts.{artifact['name']}.path"] = str(local(artifact["path"]))
    outputs = pod.template.get("outputs", {})
    for artifact in outputs.get("artifacts", []):
        if "path" in artifact:
            scope[f"outputs.artifacts.{artifact['name']}.path"] = str(local(artifact["path"]))
    for parameter in outputs.get("parameters", []):
        if "path" in parameter.get("valueFrom", {}):
            path = str(local(parameter["valueFrom"]["path"]))
            scope[f"outputs.parameters.{parameter['name']}.path"] = path
    scope.update({"pod.name": pod.name, "node.name": pod.node["name"], "retries": str(retries)})
    return scope


def _prepare_workdir(pod: _Pod, body: Manifest) -> list[str]:
    """Create the folders, place input artifacts, write the script; return the command line."""
    (pod.workdir / "tmp").mkdir(parents=True, exist_ok=True)
    pod.paths.root.mkdir(parents=True, exist_ok=True)
    for declared in pod.paths.declared:
        pod.paths.local(declared).parent.mkdir(parents=True, exist_ok=True)
    rewrite = pod.paths.rewrite
    argv = [rewrite(str(part)) for part in [*body.get("command", []), *body.get("args", [])]]
    program = pod.run.services.resolve_interpreter(argv[0], pod.run.workflow)
    if program is None:
        raise PodError(f'exec: "{argv[0]}": executable file not found in $PATH')
    if "source" in body:
        text = rewrite(str(body["source"]))
        compiled = None
        if text == body["source"] and is_python(argv[0]):  # the same for every step
            compiled = pod.run.services.scripts.compiled(program, text)
        if compiled is not None:
            argv.append(str(compiled))
        else:
            source = pod.workdir / "script"
            source.write_text(text)
            source.chmod(0o755)
            argv.append(str(source))
    return [program, *argv[1:]]


async def _load_inputs(pod: _Pod) -> None:
    repository = pod.run.services.artifacts
    for artifact in pod.node.get("inputs", {}).get("artifacts", []):
        if "path" not in artifact or "s3" not in artifact:
            continue
        key = artifact["s3"]["key"]
        try:
            source = await repository.fetch(key, pod.workdir / "artifacts" / artifact["name"])
            if source is None:
                if artifact.get("optional"):
                    continue
                raise ArtifactError(f"artifact key {key!r} does not exist")
            destination = pod.paths.local(artifact["path"])
            # Tarballs are unpacked once per content and linked into each step (unpacked.py).
            await asyncio.to_thread(
                pod.run.services.unpacked.load, source, destination, artifact.get("archive")
            )
        except (ArtifactError, OSError) as exc:
            raise PodError(f"failed to load artifact '{artifact['name']}': {exc}") from exc


async def _environment(pod: _Pod, body: Manifest) -> dict[str, str]:
    run = pod.run
    env = dict(run.services.settings.base_env)
    env.update(
        {
            "TMPDIR": str(pod.workdir / "tmp"),
            "ARGO_CONTAINER_NAME": "main",
            "ARGO_POD_NAME": pod.name,
            "ARGO_NODE_ID": pod.node["id"],
            "ARGO_WORKFLOW_NAME": run.name,
            "ARGO_WORKFLOW_UID": str(run.workflow["metadata"]["uid"]),
        }
    )
    secrets = _Secrets(run)
    for source in body.get("envFrom", []):  # first: `env` wins, as in Kubernetes
        reference = source["secretRef"]
        data = await secrets.data(str(reference["name"]))
        if data is None and not reference.get("optional"):
            raise PodError(f"secret {reference['name']!r} not found")
        prefix = str(source.get("prefix", ""))
        env.update({prefix + key: value for key, value in (data or {}).items()})
    for variable in body.get("env", []):
        if "value" in variable:
            env[variable["name"]] = pod.paths.rewrite(str(variable["value"]))
        elif "valueFrom" in variable:
            value = await secrets.value(variable["valueFrom"]["secretKeyRef"])
            if value is not None:
                env[variable["name"]] = value
        else:
            env[variable["name"]] = ""
    return env


class _Secrets:
    """The Secrets one step's environment reads, each read once."""

    def __init__(self, run: WorkflowRun) -> None:
        self._run = run
        self._read: dict[str, Mapping[str, str] | None] = {}

    async def data(self, name: str) -> Mapping[str, str] | None:
        if name not in self._read:
            lookup = self._run.services.secrets
            self._read[name] = await lookup(name) if lookup is not None else None
        return self._read[name]

    async def value(self, reference: Manifest) -> str | None:
        name, key = str(reference["name"]), str(reference["key"])
        value = (await self.data(name) or {}).get(key)
        if value is None and not reference.get("optional"):
            namespace = self._run.services.settings.namespace
            raise PodError(f"couldn't find key {key} in Secret {namespace}/{name}")
        return value


@contextlib.asynccontextmanager
async def _slot(run: WorkflowRun, node: Manifest, cancel: asyncio.Event) -> AsyncIterator[None]:
    """Wait `Pending` for the workflow's parallelism and the engine's process bound."""
    node["phase"] = "Pending"
    run.on_change()
    async with contextlib.AsyncExitStack() as stack:
        if run.parallelism is not None:
            await stack.enter_async_context(run.parallelism)
        await stack.enter_async_context(run.services.processes)
        if cancel.is_set():
            raise PodError(run.node_stop_message or "Stopped", "Failed")
        node["phase"] = "Running"
        run.on_change()
        yield


async def _start(
    pod: _Pod,
    argv: list[str],
    env: dict[str, str],
    deadlines: tuple[Deadline, ...],
    cancel: asyncio.Event,
) -> ProcessOutcome:
    run, node_id = pod.run, pod.node["id"]
    buffer = run.live_logs.setdefault(node_id, [])
    spool = LogSpool(pod.workdir / SPOOL_NAME, pod.name)

    def on_lines(stream: str, lines: list[str]) -> None:
        now = datetime.now(UTC)
        logged = [LogLine(run.name, node_id, pod.name, now, stream, line) for line in lines]
        buffer.extend(logged)
        spool.write(logged)

    def on_started(pgid: int, started_at: datetime) -> None:
        run.services.process_book.started(run, node_id, pgid, started_at)

    settings = run.services.settings
    try:
        return await run_process(
            argv,
            cwd=pod.paths.root,  # stands for `/`, an image's usual working directory
            env=env,
            deadline=min((d.at for d in deadlines), default=None),
            cancel=cancel,
            on_lines=on_lines,
            grace_seconds=settings.kill_grace_seconds,
            stdout_limit=settings.max_result_bytes,
            now=run.services.clock.now,
            nice=settings.step_nice,
            on_started=on_started,
        )
    except OSError as exc:
        raise PodError(f"failed to start {argv[0]}: {exc.strerror or exc}") from exc
    finally:
        spool.close()


def _judge(
    run: WorkflowRun, outcome: ProcessOutcome, deadlines: tuple[Deadline, ...]
) -> tuple[str, str | None]:
    if outcome.stopped_by == "cancel":
        return "Failed", run.node_stop_message or "Stopped"
    if outcome.stopped_by == "deadline":
        return "Failed", min(deadlines, key=lambda d: d.at).message
    if outcome.signal is not None:
        name = signal.Signals(outcome.signal).name
        return "Error", f"process killed by {name} (exit code {outcome.exit_code})"
    if outcome.exit_code != 0:
        return "Failed", f"Error (exit code {outcome.exit_code})"
    return "Succeeded", None


async def _collect_outputs(pod: _Pod, outputs: Manifest) -> None:
    run, node, paths = pod.run, pod.node, pod.paths
    parameters = [_output_parameter(run, p, paths) for p in outputs.get("parameters", [])]
    if parameters:
        node["outputs"]["parameters"] = parameters
    artifacts = []
    for artifact in outputs.get("artifacts", []):
        saved = await _save_output_artifact(pod, artifact)
        if saved is not None:
            artifacts.append(saved)
            if artifact.get("globalName"):
                run.set_global_artifact(artifact["globalName"], saved)
    if artifacts:
        node["outputs"]["artifacts"] = artifacts
    for parameter in parameters:
        if parameter.get("globalName"):
            run.set_global_parameter(parameter["globalName"], parameter["value"])


def _output_parameter(run: WorkflowRun, declared: Manifest, paths: PathMap) -> Manifest:
    value_from: dict[str, Any] = declared.get("valueFrom", {})
    result = {k: v for k, v in declared.items() if k != "value"}
    if "path" not in value_from:
        return {**result, "value": str(declared.get("value", value_from.get("default", "")))}
    local = paths.local(value_from["path"])
    limit = run.services.settings.max_output_parameter_bytes
    if not local.is_file():
        if "default" in value_from:
            return {**result, "value": str(value_from["default"])}
        raise PodError(
            f"failed to read output parameter '{declared['name']}': open {value_from['path']}: "
            "no such file or directory"
        )
    size = local.stat().st_size
    if size > limit:
        raise PodError(
            f"output parameter '{declared['name']}' is {size} bytes, more than the limit of "
            f"{limit} bytes; use an artifact for large outputs",
            "Failed",
        )
    value = local.read_text(errors="replace")
    return {**result, "value": value[:-1] if value.endswith("\n") else value}


async def _save_output_artifact(pod: _Pod, declared: Manifest) -> Manifest | None:
    run = pod.run
    source = pod.paths.local(declared["path"])
    if not source.exists():
        if declared.get("optional"):
            return None
        raise PodError(
            f"failed to save output artifact '{declared['name']}': open {declared['path']}: "
            "no such file or directory"
        )
    archived = is_archived(declared.get("archive"))
    key = declared.get("s3", {}).get("key") or (
        f"{run.name}/{pod.name}/{declared['name']}" + (".tgz" if archived else "")
    )
    scratch = pod.workdir / "outputs" / declared["name"]
    try:
        await run.services.artifacts.save(source, key, declared.get("archive"), scratch)
    except (ArtifactError, OSError) as exc:
        raise PodError(f"failed to save output artifact '{declared['name']}': {exc}") from exc
    saved: Manifest = {"name": declared["name"], "path": declared["path"], "s3": {"key": key}}
    if "archive" in declared:
        saved["archive"] = declared["archive"]
    return saved


async def _flush_logs(run: WorkflowRun, node_id: str) -> None:
    lines = run.live_logs.get(node_id)
    if lines:
        await run.services.save_logs(list(lines))
    run.live_logs.pop(node_id, None)
