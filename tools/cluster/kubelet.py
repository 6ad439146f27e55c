"""The process kubelet: runs the `main` container of Argo's pods as host processes.

It watches the pods of one namespace that Argo's controller creates, does argoexec's work around
them (executor.py), runs the command after `argoexec emissary --` on the host's Python, and
reports the pod's states the way a kubelet and argoexec would: Running, then a
WorkflowTaskResult, then Succeeded or Failed with the real exit code. It kills a pod's process
group when the pod is deleted or its Workflow gets `spec.shutdown`. As a Node (node.py) it has
pods bound to it and serves their `main` log, so that `pods/log` works. It knows nothing of what
the pods run. README.md lists what it does not emulate.

    python -m tools.cluster.kubelet --kubeconfig K --namespace NS --root DIR
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.cluster.executor import new_s3_client
from tools.cluster.kube import Credentials, Kube, KubeError, Object
from tools.cluster.node import NODE_NAME, register_node, serve_logs
from tools.cluster.pod import WORKFLOW_LABEL, Host, PodRun

log = logging.getLogger("kubelet")


class Kubelet:
    """Watches one namespace's Argo pods and Workflows; one thread per running pod."""

    def __init__(self, kube: Kube, namespace: str, root: Path, python: Path) -> None:
        # `python` in a step's command is the host's interpreter, outside any virtualenv.
        python_bin = root / ".bin"
        python_bin.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            link = python_bin / name
            link.unlink(missing_ok=True)
            link.symlink_to(python)
        s3_client = functools.cache(new_s3_client)  # one client per repository and key
        self.host = Host(kube, namespace, root, python_bin, s3_client)
        self.runs: dict[str, PodRun] = {}
        self._lock = threading.Lock()

    def serve(self) -> None:
        """Register the node, then follow pods and Workflows until the process ends."""
        register_node(self.host.kube, serve_logs(self.host.root, self.is_running))
        threading.Thread(
            target=self._follow, args=("workflows", self._on_workflow), daemon=True
        ).start()
        self._follow("pods", self._on_pod)

    def is_running(self, pod: str) -> bool:
        with self._lock:
            run = self.runs.get(pod)
        return run is not None and not run.finished.is_set()

    def _follow(self, kind: str, handle: Callable[[str, Object], None]) -> None:
        """List, then watch from the list's version; list again when the watch ends or expires."""
        base = "/apis/argoproj.io/v1alpha1" if kind == "workflows" else "/api/v1"
        path = f"{base}/namespaces/{self.host.namespace}/{kind}"
        kube = self.host.kube
        while True:
            try:
                listed = kube.get(path)
                for item in listed["items"]:
                    handle("ADDED", item)
                version = listed["metadata"]["resourceVersion"]
                while True:
                    for event in kube.watch(path, version):
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            handle(event["type"], event["object"])
            except KubeError as error:
                if error.status != 410:  # 410: too old a version, list again at once
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
                    del self.runs[name]
                    run.kill(deleted=True)
                elif kind != "DELETED" and pod["spec"].get("nodeName") == NODE_NAME:
                    # Bound here but not running (an earlier kubelet's): nothing to wait for.
                    with contextlib.suppress(KubeError):
                        path = f"/api/v1/namespaces/{self.host.namespace}/pods/{name}"
                        self.host.kube.delete(path, gracePeriodSeconds=0)
                return
            if run is not None or pod.get("status", {}).get("phase", "Pending") != "Pending":
                return
            run = self.runs[name] = PodRun(self.host, pod)
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
            run.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder for the pods' files")
    host_python = Path(getattr(sys, "_base_executable", sys.executable))
    parser.add_argument("--python", type=Path, default=host_python)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kube = Kube(Credentials.from_kubeconfig(args.kubeconfig))
    kubelet = Kubelet(kube, args.namespace, args.root, args.python)

    def stop(signum: int, frame: Any) -> None:
        kubelet.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.serve()


if __name__ == "__main__":
    main()
