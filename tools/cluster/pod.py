"""One pod's life in the process kubelet: bound, staged, run, reported, finished or killed."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tools.cluster.executor import Executor, ExecutorError, S3Client
from tools.cluster.kube import Kube, KubeError, Object
from tools.cluster.node import bind

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
GRACE_SECONDS = 2.0
CONFIG_RETRY_SECONDS = 0.5
log = logging.getLogger("kubelet")


class MissingConfigError(ExecutorError):
    """A Secret or ConfigMap, or a key of one, that main's env reads does not exist (yet)."""


@dataclass(frozen=True)
class Host:
    """What every pod shares: the API, the namespace, where pods live, which Python runs."""

    kube: Kube
    namespace: str
    root: Path
    python_bin: Path  # holds `python` and `python3`
    s3_client: Callable[[str, str, str, str], S3Client]


class PodRun:
    """One pod, from binding to its final status, on its own thread."""

    def __init__(self, host: Host, pod: Object) -> None:
        self.host = host
        self.pod = pod
        self.name: str = pod["metadata"]["name"]
        self.workflow: str = pod["metadata"]["labels"][WORKFLOW_LABEL]
        self.root = host.root / self.name
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = threading.Event()
        self.deleted = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def kill(self, deleted: bool = False) -> None:
        """Stop the main process: SIGTERM to its group, SIGKILL after a grace period."""
        if deleted:
            self.deleted.set()
        with self._lock:
            self.killed.set()
            process = self.process
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        threading.Timer(GRACE_SECONDS, _signal_group, (process, signal.SIGKILL)).start()

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s", self.name)
            with contextlib.suppress(KubeError):
                self._patch_status(
                    {"phase": "Failed", "message": "process kubelet: internal error"}
                )
        finally:
            self.finished.set()
            if self.deleted.is_set():
                # A bound pod's deletion waits for its kubelet to say its containers stopped.
                with contextlib.suppress(KubeError):
                    self.host.kube.delete(self._path(), gracePeriodSeconds=0)

    def _run(self) -> None:
        host = self.host
        if not self.pod["spec"].get("nodeName"):
            bind(host.kube, host.namespace, self.name)
        try:
            executor = Executor(host.kube, host.namespace, self.pod, self.root, host.s3_client)
            containers = [c["name"] for c in self.pod["spec"]["containers"]]
            unsupported = [c for c in containers if c not in {"main", "wait"}]
            if unsupported:
                raise ExecutorError(f"process kubelet: containers {unsupported} are not emulated")
            executor.stage()
        except (ExecutorError, KubeError, OSError) as error:
            self._finish(init=(1, str(error)), main=None, wait=None)
            return
        try:
            command = self._wait_for_config(executor)
        except (ExecutorError, KubeError, OSError) as error:
            self._finish(init=(0, ""), main=None, wait=(1, str(error)))
            return
        if command is None:  # killed while waiting
            if not self.deleted.is_set():
                self._finish(init=(0, ""), main=143, wait=(0, ""))
            return
        argv, env, cwd = command
        self._patch_status(
            {
                "phase": "Running",
                "startTime": _now(),
                "initContainerStatuses": [_terminated("init", self.pod, 0)],
                "containerStatuses": [_running(c, self.pod) for c in ("wait", "main")],
            }
        )
        exit_code, stdout, main_log = self._execute(argv, env, cwd)
        if self.deleted.is_set():
            return
        wait: tuple[int, str] = (0, "")
        try:
            executor.report(executor.collect(stdout, main_log))
        except (ExecutorError, KubeError, OSError) as error:
            wait = (1, str(error))
            executor.report({})
        self._finish(init=(0, ""), main=exit_code, wait=wait)

    def _wait_for_config(self, executor: Executor) -> tuple[list[str], dict[str, str], Path] | None:
        """main's command, once the Secrets and ConfigMaps it reads exist; None if killed first.

        A kubelet keeps such a container waiting (CreateContainerConfigError) and retries, so
        that a Secret created just after its pod still reaches it.
        """
        waiting = ""
        while True:
            try:
                return self._command(executor)
            except MissingConfigError as error:
                if str(error) != waiting:
                    waiting = str(error)
                    self._patch_status(
                        {
                            "initContainerStatuses": [_terminated("init", self.pod, 0)],
                            "containerStatuses": [
                                _running("wait", self.pod),
                                _waiting("main", self.pod, "CreateContainerConfigError", waiting),
                            ],
                        }
                    )
            if self.killed.wait(CONFIG_RETRY_SECONDS):
                return None

    def _command(self, executor: Executor) -> tuple[list[str], dict[str, str], Path]:
        main = executor.main
        argv = [*main.get("command", []), *main.get("args", [])]
        if "--" in argv and argv[0].endswith("argoexec"):
            argv = argv[argv.index("--") + 1 :]
        if not argv:
            raise ExecutorError("main has no command: the image's entrypoint is not emulated")
        env = {
            "PATH": f"{self.host.python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
        }
        env.update(container_env(self.host.kube, self.host.namespace, self.pod, main))
        env = {k: executor.rewrite(v) for k, v in env.items()}
        cwd = executor.local(main["workingDir"]) if main.get("workingDir") else self.root
        cwd.mkdir(parents=True, exist_ok=True)
        return [executor.rewrite(a) for a in argv], env, cwd

    def _execute(self, argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, Path]:
        """Run main; its stdout and stderr go, interleaved, to main.log as a container's would."""
        main_log = self.root / "main.log"
        main_log.touch()
        with self._lock:
            if self.killed.is_set():
                return 143, "", main_log
            try:
                process = self.process = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group, killed as one
                )
            except OSError as error:
                main_log.write_text(f"{error}\n")
                return 127, "", main_log
        stdout: list[bytes] = []
        lock = threading.Lock()
        readers = [
            threading.Thread(target=_copy_lines, args=(process.stdout, main_log, lock, stdout)),
            threading.Thread(target=_copy_lines, args=(process.stderr, main_log, lock, None)),
        ]
        for reader in readers:
            reader.start()
        code = process.wait()
        for reader in readers:
            reader.join()
        # A process killed by signal N exits as 128 + N in a container (143 for SIGTERM).
        exit_code = 128 - code if code < 0 else code
        return exit_code, b"".join(stdout).decode(errors="replace"), main_log

    def _finish(
        self, init: tuple[int, str], main: int | None, wait: tuple[int, str] | None
    ) -> None:
        """The final status: init's, then wait's and main's terminated states."""
        failed = init[0] != 0 or main != 0 or (wait is not None and wait[0] != 0)
        containers = [_terminated("wait", self.pod, *wait)] if wait is not None else []
        if main is not None:
            containers.append(_terminated("main", self.pod, main))
        self._patch_status(
            {
                "phase": "Failed" if failed else "Succeeded",
                "initContainerStatuses": [_terminated("init", self.pod, *init)],
                "containerStatuses": containers,
            }
        )

    def _path(self) -> str:
        return f"/api/v1/namespaces/{self.host.namespace}/pods/{self.name}"

    def _patch_status(self, status: Object) -> None:
        try:
            self.host.kube.patch(f"{self._path()}/status", {"status": status})
        except KubeError as error:
            if error.status != 404:  # a pod deleted meanwhile has no status to report
                raise


def container_env(kube: Kube, namespace: str, pod: Object, container: Object) -> dict[str, str]:
    """A container's environment: literal values, Secret and ConfigMap keys, pod fields."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for kind, key in (("secrets", "secretRef"), ("configmaps", "configMapRef")):
            if reference := source.get(key):
                data = _data(kube, namespace, kind, reference["name"], reference.get("optional"))
                env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for variable in container.get("env", []):
        if "valueFrom" not in variable:
            env[variable["name"]] = str(variable.get("value", ""))
            continue
        value_from = variable["valueFrom"]
        if "fieldRef" in value_from:
            env[variable["name"]] = _field(pod, value_from["fieldRef"]["fieldPath"])
            continue
        kind, key = next(
            (
                (k, r)
                for k, r in (("secrets", "secretKeyRef"), ("configmaps", "configMapKeyRef"))
                if r in value_from
            ),
            ("", ""),
        )
        if not kind:
            raise ExecutorError(
                f"env {variable['name']}: only Secret, ConfigMap and field references are emulated"
            )
        reference = value_from[key]
        data = _data(kube, namespace, kind, reference["name"], reference.get("optional"))
        if reference["key"] in data:
            env[variable["name"]] = data[reference["key"]]
        elif not reference.get("optional"):
            kind_name = "Secret" if kind == "secrets" else "ConfigMap"  # a kubelet's words
            raise MissingConfigError(
                f"couldn't find key {reference['key']} in {kind_name} "
                f"{namespace}/{reference['name']}"
            )
    return env


def _data(
    kube: Kube, namespace: str, kind: str, name: str, optional: bool | None
) -> dict[str, str]:
    try:
        found = kube.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
    except KubeError as error:
        if error.status == 404 and optional:
            return {}
        if error.status != 404:
            raise
        raise MissingConfigError(f'{kind[:-1]} "{name}" not found') from None
    data: dict[str, str] = found.get("data", {})
    if kind == "secrets":
        data = {k: base64.b64decode(v).decode() for k, v in data.items()}
    return data


def _field(pod: Object, path: str) -> str:
    meta = pod["metadata"]
    simple: dict[str, str] = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return simple[path]
    for prefix in ("labels", "annotations"):
        start = f"metadata.{prefix}['"
        if path.startswith(start) and path.endswith("']"):
            return str(meta.get(prefix, {}).get(path[len(start) : -2], ""))
    raise ExecutorError(f"fieldRef {path!r} is not emulated")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy_lines(
    stream: IO[bytes] | None, path: Path, lock: threading.Lock, keep: list[bytes] | None
) -> None:
    assert stream is not None
    with stream, path.open("ab") as sink:
        for line in iter(stream.readline, b""):
            with lock:
                sink.write(line)
                sink.flush()
            if keep is not None:
                keep.append(line)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _image(pod: Object, name: str) -> str:
    containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    return next((c.get("image", "") for c in containers if c["name"] == name), "")


def _running(name: str, pod: Object) -> Object:
    return {
        "name": name,
        "image": _image(pod, name),
        "imageID": "",
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": _now()}},
    }


def _waiting(name: str, pod: Object, reason: str, message: str) -> Object:
    return {
        "name": name,
        "image": _image(pod, name),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": reason, "message": message}},
    }


def _terminated(name: str, pod: Object, code: int, message: str = "") -> Object:
    terminated: Object = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": _now(),
        "finishedAt": _now(),
    }
    if message:
        terminated["message"] = message
    return {
        "name": name,
        "image": _image(pod, name),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"terminated": terminated},
    }
