"""How the gateway reaches the Kubernetes API: a kubeconfig's current context, or in-cluster.

``KUBECONFIG`` (the first file it names that exists; kubectl's merging of several files is not
done), else ``~/.kube/config``, else the pod's service account
(``/var/run/secrets/kubernetes.io/serviceaccount``), as client-go orders them. A kubeconfig user
may hold a bearer token (inline or ``tokenFile``) or a client certificate (inline or files);
``exec`` and ``auth-provider`` plugins are refused with a message saying so. The in-cluster token
is read again when its file changes: bound service-account tokens are rotated by the kubelet.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CredentialsError", "KubeCredentials", "load_credentials"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class CredentialsError(Exception):
    """No usable way to reach the API: the message says what was looked for and why it failed."""


@dataclass
class KubeCredentials:
    server: str
    namespace: str  # the context's (or the pod's) namespace; "default" when none is set
    ca_pem: bytes | None = None  # None: the system's trust store
    insecure: bool = False
    token: str | None = None
    token_file: Path | None = None  # read again whenever it changes
    client_cert: tuple[bytes, bytes] | None = None  # PEM certificate, PEM key
    source: str = ""  # where they came from, for messages
    _cached: tuple[float, str] | None = field(default=None, repr=False)

    def bearer_token(self) -> str | None:
        if self.token_file is None:
            return self.token
        mtime = self.token_file.stat().st_mtime
        if self._cached is None or self._cached[0] != mtime:
            self._cached = (mtime, self.token_file.read_text().strip())
        return self._cached[1]

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context()
        if self.ca_pem is not None:
            context = ssl.create_default_context(cadata=self.ca_pem.decode())
        if self.client_cert is not None:
            # ssl loads a certificate chain from files only: write them owner-only, then remove.
            with tempfile.TemporaryDirectory() as folder:
                cert, key = Path(folder) / "client.crt", Path(folder) / "client.key"
                for path, content in ((cert, self.client_cert[0]), (key, self.client_cert[1])):
                    path.touch(mode=0o600)
                    path.write_bytes(content)
                context.load_cert_chain(cert, key)
        return context


def load_credentials(environ: Mapping[str, str] | None = None) -> KubeCredentials:
    environ = os.environ if environ is None else environ
    candidates = [Path(p) for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not candidates:
        candidates = [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]
    for path in candidates:
        if path.is_file():
            return _from_kubeconfig(path)
    if "KUBERNETES_SERVICE_HOST" in environ and SERVICE_ACCOUNT_DIR.is_dir():
        return _in_cluster(environ)
    looked = ", ".join(str(p) for p in candidates)
    raise CredentialsError(
        f"no kubeconfig at {looked} and not running in a pod (KUBERNETES_SERVICE_HOST unset): "
        "set KUBECONFIG"
    )


def _in_cluster(environ: Mapping[str, str]) -> KubeCredentials:
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    return KubeCredentials(
        server=f"https://{host}:{port}",
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default",
        ca_pem=(SERVICE_ACCOUNT_DIR / "ca.crt").read_bytes(),
        token_file=SERVICE_ACCOUNT_DIR / "token",
        source="the pod's service account",
    )


def _from_kubeconfig(path: Path) -> KubeCredentials:
    try:
        config = yaml.safe_load(path.read_text())
        current = config["current-context"]
        context = _named(config, "contexts", current, "context")
        cluster = _named(config, "clusters", context["cluster"], "cluster")
        user = _named(config, "users", context["user"], "user") if context.get("user") else {}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise CredentialsError(f"cannot read kubeconfig {path}: {exc!r}") from exc
    for plugin in ("exec", "auth-provider"):
        if plugin in user:
            raise CredentialsError(
                f"kubeconfig {path}: user {context['user']!r} uses an {plugin} plugin, which "
                "tender does not run; use a token or a client certificate"
            )
    base = path.parent
    client_cert = None
    cert = _bytes(user, "client-certificate", base)
    key = _bytes(user, "client-key", base)
    if cert is not None and key is not None:
        client_cert = (cert, key)
    token_file = user.get("tokenFile")
    return KubeCredentials(
        server=str(cluster["server"]).rstrip("/"),
        namespace=context.get("namespace") or "default",
        ca_pem=_bytes(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=user.get("token"),
        token_file=(base / token_file) if token_file else None,
        client_cert=client_cert,
        source=f"kubeconfig {path} (context {current!r})",
    )


def _named(config: dict[str, Any], section: str, name: str, key: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            found: dict[str, Any] = entry.get(key) or {}
            return found
    raise KeyError(f"{section[:-1]} {name!r} is not defined")


def _bytes(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    """``<key>-data`` (base64) or ``<key>`` (a file, relative to the kubeconfig's folder)."""
    if data := section.get(f"{key}-data"):
        return base64.b64decode(str(data))
    if file := section.get(key):
        return (base / str(file)).read_bytes()
    return None
