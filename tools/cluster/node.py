"""The process kubelet as a Node: pods bound to it, and their logs served to the API server.

`pods/log` is answered by the API server asking the pod's node (its InternalIP and kubelet
port, over HTTPS) for `/containerLogs/{namespace}/{pod}/{container}`. So the kubelet registers
a Node, binds each pod it runs to it, and serves the `main` container's log from the pod's
folder: while the pod runs (`follow=true` streams until it ends) and until the pod is deleted.
"""

from __future__ import annotations

import contextlib
import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tools.cluster.kube import Kube, KubeError

NODE_NAME = "process-kubelet"


def register_node(kube: Kube, port: int) -> None:
    """Create (or refresh) the Node that points the API server at this kubelet's log server."""
    with contextlib.suppress(KubeError):
        kube.delete(f"/api/v1/nodes/{NODE_NAME}")
    kube.create("/api/v1/nodes", {"metadata": {"name": NODE_NAME}})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }
    kube.patch(
        f"/api/v1/nodes/{NODE_NAME}/status",
        {
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                "conditions": [ready],
            }
        },
    )


def bind(kube: Kube, namespace: str, pod: str) -> None:
    """What the scheduler would do: assign the pod to this node."""
    kube.create(
        f"/api/v1/namespaces/{namespace}/pods/{pod}/binding",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
        },
    )


def serve_logs(root: Path, is_running: Callable[[str], bool]) -> int:
    """Serve `<root>/<pod>/main.log` over HTTPS on a free loopback port; return the port."""
    certificate = root / ".tls"
    certificate.mkdir(parents=True, exist_ok=True)
    key, cert = certificate / "kubelet.key", certificate / "kubelet.crt"
    # The API server does not check a kubelet's certificate unless told a CA to check it with.
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={NODE_NAME}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    handler = type(
        "Handler", (_LogHandler,), {"root": root, "is_running": staticmethod(is_running)}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port: int = server.server_address[1]
    return port


class _LogHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    is_running: Callable[[str], bool]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs" or parts[2] in {".", ".."}:
            self.send_error(404)
            return
        pod, container = parts[2], parts[3]
        log = self.root / pod / "main.log"
        if container != "main" or not log.exists():
            self.send_error(404, f"no log for container {container!r} of pod {pod!r}")
            return
        query = parse_qs(url.query)
        follow = query.get("follow", ["false"])[0] == "true"
        tail = int(query["tailLines"][0]) if "tailLines" in query else None
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        with log.open("rb") as source:
            lines = source.readlines()
            self.wfile.write(b"".join(lines[-tail:] if tail is not None else lines))
            while follow:
                running = self.is_running(pod)
                chunk = source.read()
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                elif not running:
                    break
                else:
                    time.sleep(0.1)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the API server asks often."""
