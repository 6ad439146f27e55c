"""The Argo engine: the Engine protocol on the Kubernetes API of one namespace (no Argo Server).

`ArgoEngine` (engine.py) talks to the API through `KubeClient` (client.py, httpx) with the
credentials of a kubeconfig or of the pod (credentials.py); it follows Workflows with a watch
(watch.py), reads step logs from pods and from the artifact repository (logs.py), and keeps the
environment variables' Secret in step with the store (secrets.py). The gateway's Role is written
once, in permissions.py; checks.py checks it, the CRDs and the artifact repository at start-up.
"""

from __future__ import annotations

from gateway.engines.argo.checks import ArgoSetupError, Expected, check_cluster
from gateway.engines.argo.client import KubeApiError, KubeClient
from gateway.engines.argo.credentials import CredentialsError, KubeCredentials, load_credentials
from gateway.engines.argo.engine import ArgoEngine
from gateway.engines.argo.logs import LogArchive
from gateway.engines.argo.secrets import EnvironmentSecret, ExecutionSecretWriter
from gateway.engines.argo.settings import ArgoEngineSettings

__all__ = [
    "ArgoEngine",
    "ArgoEngineSettings",
    "ArgoSetupError",
    "CredentialsError",
    "EnvironmentSecret",
    "ExecutionSecretWriter",
    "Expected",
    "KubeApiError",
    "KubeClient",
    "KubeCredentials",
    "LogArchive",
    "check_cluster",
    "load_credentials",
]
