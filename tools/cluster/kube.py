"""The few Kubernetes REST calls the test cluster's tools make, over httpx with a bearer token.

Enough for the cluster's set-up and the process kubelet: JSON in and out, merge patches, and a
watch that resumes from a resourceVersion. Not a general client: the Argo engine has its own.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

Object = dict[str, Any]


class KubeError(Exception):
    """The API server answered an error status; `status` and `reason` come from its Status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to trust and authenticate to it."""

    server: str
    token: str
    ca_pem: bytes

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Credentials:
        """Read the current context of a kubeconfig that holds a token and inline CA data."""
        config = yaml.safe_load(path.read_text())
        context_name = config["current-context"]
        [context] = [c["context"] for c in config["contexts"] if c["name"] == context_name]
        [cluster] = [c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"]]
        [user] = [u["user"] for u in config["users"] if u["name"] == context["user"]]
        ca = base64.b64decode(cluster["certificate-authority-data"])
        return cls(server=cluster["server"], token=user["token"], ca_pem=ca)


class Kube:
    """A synchronous client for one API server; safe to share between threads."""

    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        context = ssl.create_default_context(cadata=credentials.ca_pem.decode())
        self._http = httpx.Client(
            base_url=credentials.server,
            headers={"Authorization": f"Bearer {credentials.token}"},
            verify=context,
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Object | None = None, **params: Any) -> Object:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        content = json.dumps(body).encode() if body is not None else None
        response = self._http.request(method, path, content=content, params=params, headers=headers)
        return _decode(response)

    def create_from_yaml(self, path: str, text: bytes) -> Object:
        """POST a YAML document as it is: the API server parses it faster than PyYAML."""
        headers = {"Content-Type": "application/yaml"}
        return _decode(self._http.post(path, content=text, headers=headers))

    def get(self, path: str, **params: Any) -> Object:
        return self.request("GET", path, **params)

    def create(self, path: str, body: Object) -> Object:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Object) -> Object:
        """A JSON merge patch (RFC 7386)."""
        return self.request("PATCH", path, body)

    def delete(self, path: str, **params: Any) -> Object:
        return self.request("DELETE", path, **params)

    def watch(self, path: str, resource_version: str) -> Iterator[Object]:
        """Events on a collection after resource_version, until the server ends the watch.

        Raises KubeError(410) when that version is too old: list again and watch from there.
        """
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
        }
        with self._http.stream("GET", path, params=params, timeout=None) as response:
            if response.status_code != 200:
                response.read()
                _decode(response)
            for line in response.iter_lines():
                if not line:
                    continue
                event: Object = json.loads(line)
                if event["type"] == "ERROR":
                    status = event["object"]
                    raise KubeError(
                        status.get("code", 0), status.get("reason", ""), status.get("message", "")
                    )
                yield event


def _decode(response: httpx.Response) -> Object:
    try:
        body: Object = response.json()
    except ValueError:
        body = {"message": response.text}
    if response.is_error:
        raise KubeError(response.status_code, body.get("reason", ""), body.get("message", ""))
    return body


def write_kubeconfig(path: Path, server: str, token: str, ca_pem: bytes, namespace: str) -> None:
    """A kubeconfig that works anywhere on this machine: the CA is inline, the token too."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tender-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [
            {
                "name": "tender-test",
                "context": {"cluster": "tender-test", "user": "admin", "namespace": namespace},
            }
        ],
        "current-context": "tender-test",
    }
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
        yaml.safe_dump(config, tmp)
    Path(tmp.name).chmod(0o600)
    Path(tmp.name).replace(path)
