"""The process kubelet: runs the `main` container of Argo's pods as host processes.

It watches the pods of one namespace that Argo's controller creates, does argoexec's work around
them (executor.py), runs the command after `argoexec emissary --` on the host's Python, and
reports the pod's states the way a kubelet and argoexec would: Running, then a
WorkflowTaskResult, then Succeeded or Failed with the real exit code. It kills a pod's process
group when the pod is deleted or its Workflow gets `spec.shutdown`. It knows nothing of what
the pods run. README.md lists what it does not emulate.

    python -m tools.cluster.kubelet --kubeconfig K --namespace NS --root DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tools.cluster.executor import Executor, ExecutorError, S3Client, new_s3_client
from tools.cluster.kube import Credentials, Kube, KubeError, Object

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
GRACE_SECONDS = 2.0
log = logging.getLogger("kubelet")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodRun:
    """One pod, from staging to its final status, on its own thread."""

    def __init__(self, kubelet: Kubelet, pod: Object) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.name: str = pod["metadata"]["name"]
        self.workflow: str = pod["metadata"]["labels"][WORKFLOW_LABEL]
        self.root = kubelet.root / self.name
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = threading.Event()
        self.deleted = threading.Event()
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
            self._finish_quietly({"phase": "Failed", "message": "process kubelet: internal error"})

    def _run(self) -> None:
        kube, namespace = self.kubelet.kube, self.kubelet.namespace
        try:
            executor = Executor(kube, namespace, self.pod, self.root, self.kubelet.s3_client)
            unsupported = [
                c["name"]
                for c in self.pod["spec"]["containers"]
                if c["name"] not in {"main", "wait"}
            ]
            if unsupported:
                raise ExecutorError(f"process kubelet: containers {unsupported} are not emulated")
            executor.stage()
            argv, env, cwd = self._command(executor)
        except (ExecutorError, KubeError, OSError) as error:
            self._finish(init=(1, str(error)), main=None, wait=None)
            return
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

    def _command(self, executor: Executor) -> tuple[list[str], dict[str, str], Path]:
        main = executor.main
        argv = [*main.get("command", []), *main.get("args", [])]
        if "--" in argv and argv[0].endswith("argoexec"):
            argv = argv[argv.index("--") + 1 :]
        if not argv:
            raise ExecutorError("main has no command: the image's entrypoint is not emulated")
        env = {
            "PATH": f"{self.kubelet.python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
        }
        env.update(self.kubelet.resolve_env(self.pod, main))
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
        return (
            (128 - code if code < 0 else code),
            b"".join(stdout).decode(errors="replace"),
            main_log,
        )

    def _finish(
        self, init: tuple[int, str], main: int | None, wait: tuple[int, str] | None
    ) -> None:
        failed = init[0] != 0 or main != 0 or (wait is not None and wait[0] != 0)
        statuses = [
            _terminated(c, self.pod, code, message)
            for c, (code, message) in [("wait", wait or (0, ""))]
        ]
        if main is not None:
            statuses.append(_terminated("main", self.pod, main))
        status: Object = {
            "phase": "Failed" if failed else "Succeeded",
            "initContainerStatuses": [_terminated("init", self.pod, *init)],
            "containerStatuses": statuses if init[0] == 0 else [],
        }
        self._patch_status(status)

    def _finish_quietly(self, status: Object) -> None:
        with contextlib.suppress(KubeError):
            self._patch_status(status)

    def _patch_status(self, status: Object) -> None:
        path = f"/api/v1/namespaces/{self.kubelet.namespace}/pods/{self.name}/status"
        try:
            self.kubelet.kube.patch(path, {"status": status})
        except KubeError as error:
            if error.status != 404:  # a pod deleted meanwhile has no status to report
                raise


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


class Kubelet:
    """Watches one namespace's Argo pods and Workflows; one thread per running pod."""

    def __init__(self, kube: Kube, namespace: str, root: Path, python: Path) -> None:
        self.kube = kube
        self.namespace = namespace
        self.root = root
        # `python` in a step's command is the host's interpreter, outside any virtualenv.
        self.python_bin = root / ".bin"
        self.python_bin.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            link = self.python_bin / name
            link.unlink(missing_ok=True)
            link.symlink_to(python)
        self.runs: dict[str, PodRun] = {}
        self._lock = threading.Lock()

    @functools.cache  # noqa: B019  (one kubelet per process)
    def s3_client(
        self, endpoint_url: str, region: str, access_key: str, secret_key: str
    ) -> S3Client:
        return new_s3_client(endpoint_url, region, access_key, secret_key)

    def resolve_env(self, pod: Object, container: Object) -> dict[str, str]:
        """A container's environment: literal values, Secret and ConfigMap keys, pod fields."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            for kind, reference in (
                ("secrets", source.get("secretRef")),
                ("configmaps", source.get("configMapRef")),
            ):
                if reference:
                    data = self._data(kind, reference["name"], reference.get("optional", False))
                    env.update({source.get("prefix", "") + k: v for k, v in data.items()})
        for variable in container.get("env", []):
            value = self._env_value(pod, variable)
            if value is not None:
                env[variable["name"]] = value
        return env

    def _env_value(self, pod: Object, variable: Object) -> str | None:
        if "valueFrom" not in variable:
            return str(variable.get("value", ""))
        source = variable["valueFrom"]
        for kind, key in (("secrets", "secretKeyRef"), ("configmaps", "configMapKeyRef")):
            if key in source:
                reference = source[key]
                data = self._data(kind, reference["name"], reference.get("optional", False))
                if reference["key"] not in data and not reference.get("optional"):
                    raise ExecutorError(
                        f"couldn't find key {reference['key']} in {kind[:-1]} {reference['name']}"
                    )
                return data.get(reference["key"])
        if "fieldRef" in source:
            return _field(pod, source["fieldRef"]["fieldPath"])
        raise ExecutorError(
            f"env {variable['name']}: only Secret, ConfigMap and field references are emulated"
        )

    def _data(self, kind: str, name: str, optional: bool) -> dict[str, str]:
        try:
            found = self.kube.get(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")
        except KubeError as error:
            if error.status == 404 and optional:
                return {}
            raise ExecutorError(f"{kind[:-1]} {name!r} not found") from None
        data: dict[str, str] = found.get("data", {})
        if kind == "secrets":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        return data

    # --- watching ---

    def serve(self) -> None:
        threading.Thread(
            target=self._follow, args=("workflows", self._on_workflow), daemon=True
        ).start()
        self._follow("pods", self._on_pod)

    def _follow(self, kind: str, handle: Any) -> None:
        """List, then watch from the list's version; list again when the watch ends or expires."""
        base = "/apis/argoproj.io/v1alpha1" if kind == "workflows" else "/api/v1"
        path = f"{base}/namespaces/{self.namespace}/{kind}"
        while True:
            try:
                listed = self.kube.get(path)
                for item in listed["items"]:
                    handle("ADDED", item)
                version = listed["metadata"]["resourceVersion"]
                while True:
                    for event in self.kube.watch(path, version):
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            handle(event["type"], event["object"])
            except KubeError as error:
                if error.status != 410:
                    log.warning("watching %s: %s", kind, error)
                    time.sleep(1)
            except Exception:
                log.exception("watching %s", kind)
                time.sleep(1)

    def _on_pod(self, kind: str, pod: Object) -> None:
        meta = pod["metadata"]
        if WORKFLOW_LABEL not in meta.get("labels", {}):
            return
        name = meta["name"]
        with self._lock:
            run = self.runs.get(name)
            if kind == "DELETED" or meta.get("deletionTimestamp"):
                if run is not None:
                    run.kill(deleted=True)
                    del self.runs[name]
                return
            if run is not None or pod.get("status", {}).get("phase", "Pending") != "Pending":
                return
            run = self.runs[name] = PodRun(self, pod)
        threading.Thread(target=run.run, name=name, daemon=True).start()

    def _on_workflow(self, kind: str, workflow: Object) -> None:
        if kind == "DELETED" or not workflow.get("spec", {}).get("shutdown"):
            return
        name = workflow["metadata"]["name"]
        with self._lock:
            runs = [run for run in self.runs.values() if run.workflow == name]
        for run in runs:
            run.kill()

    def stop(self) -> None:
        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            run.kill(deleted=True)


def _field(pod: Object, path: str) -> str:
    meta = pod["metadata"]
    simple: dict[str, str] = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "spec.nodeName": "",
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return simple[path]
    for prefix, values in (
        ("metadata.labels", meta.get("labels", {})),
        ("metadata.annotations", meta.get("annotations", {})),
    ):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str(values.get(path[len(prefix) + 2 : -2], ""))
    raise ExecutorError(f"fieldRef {path!r} is not emulated")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder for the pods' files")
    parser.add_argument(
        "--python", type=Path, default=Path(getattr(sys, "_base_executable", sys.executable))
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    kubelet = Kubelet(
        Kube(Credentials.from_kubeconfig(args.kubeconfig)), args.namespace, args.root, args.python
    )

    def stop(signum: int, frame: Any) -> None:
        kubelet.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.serve()


if __name__ == "__main__":
    main()
