"""Reading a kubeconfig as kubectl does for its current context, or refusing it clearly."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.engines.argo.credentials import CredentialsError, load_credentials


def _kubeconfig(path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> Path:
    config = {
        "current-context": "here",
        "contexts": [
            {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "no"}},
            {"name": "here", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
        ],
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://k8s.test:6443/"}}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_current_context_gives_server_namespace_and_token(tmp_path: Path) -> None:
    ca = b"-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n"
    cluster = {
        "server": "https://k8s.test:6443/",
        "certificate-authority-data": base64.b64encode(ca).decode(),
    }
    config = _kubeconfig(tmp_path / "config", {"token": "t0k3n"}, cluster)

    credentials = load_credentials({"KUBECONFIG": f"{tmp_path / 'missing'}:{config}"})

    assert credentials.server == "https://k8s.test:6443"
    assert credentials.namespace == "team"
    assert credentials.bearer_token() == "t0k3n"
    assert credentials.ca_pem == ca
    assert str(config) in credentials.source


def test_a_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    config = _kubeconfig(tmp_path / "config", {"tokenFile": "token"})
    credentials = load_credentials({"KUBECONFIG": str(config)})
    assert credentials.bearer_token() == "first"

    token.write_text("second\n")
    stat = token.stat()
    os.utime(token, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert credentials.bearer_token() == "second"


def test_client_certificates_from_files_next_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "me.crt").write_bytes(b"CERT")
    (tmp_path / "me.key").write_bytes(b"KEY")
    config = _kubeconfig(
        tmp_path / "config", {"client-certificate": "me.crt", "client-key": "me.key"}
    )

    credentials = load_credentials({"KUBECONFIG": str(config)})

    assert credentials.client_cert == (b"CERT", b"KEY")
    assert credentials.bearer_token() is None


@pytest.mark.parametrize("plugin", ["exec", "auth-provider"])
def test_credential_plugins_are_refused_by_name(tmp_path: Path, plugin: str) -> None:
    config = _kubeconfig(tmp_path / "config", {plugin: {"command": "aws"}})

    with pytest.raises(CredentialsError, match=f"{plugin} plugin"):
        load_credentials({"KUBECONFIG": str(config)})


def test_without_kubeconfig_or_pod_the_error_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as raised:
        load_credentials({"HOME": str(tmp_path)})

    assert str(tmp_path / ".kube" / "config") in str(raised.value)
    assert "KUBECONFIG" in str(raised.value)


def test_a_context_naming_an_unknown_cluster_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "current-context": "here",
                "contexts": [{"name": "here", "context": {"cluster": "gone", "user": "u"}}],
                "clusters": [],
                "users": [],
            }
        )
    )

    with pytest.raises(CredentialsError, match="gone"):
        load_credentials({"KUBECONFIG": str(config)})
