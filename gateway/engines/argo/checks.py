"""What ``tender serve`` checks before it serves on Argo, so that a mistake shows at start-up.

In order: the API answers (and accepts the credentials), Argo's CRDs are installed, the gateway
holds every permission of its Role (one SelfSubjectAccessReview per verb, ``permissions.py``),
and the artifact repository it names keeps artifacts in tender's bucket. Each problem is named
exactly: which server, which CRD, which verb on which resource in which namespace.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from compiler.keys import LOGS_KEY_FORMAT
from gateway.engines.argo.client import KubeApiError, KubeClient
from gateway.engines.argo.objects import CRON_WORKFLOWS, WORKFLOW_TEMPLATES, WORKFLOWS
from gateway.engines.argo.permissions import Permission, permissions
from gateway.engines.argo.settings import ARTIFACT_REPOSITORIES_CONFIGMAP
from gateway.engines.errors import EngineError, EngineUnavailableError

__all__ = ["ArgoSetupError", "check_cluster"]

_log = logging.getLogger("tender.engines.argo")
_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_DEFAULT_REPOSITORY = "workflows.argoproj.io/default-artifact-repository"


class ArgoSetupError(EngineError):
    """The cluster cannot serve tender as it is; ``problems`` says each thing that is missing."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Expected:
    namespace: str
    bucket: str
    key_prefix: str
    artifact_repository: str | None
    endpoint_url: str = ""  # tender's S3 endpoint (empty: AWS)


async def check_cluster(client: KubeClient, expected: Expected) -> None:
    """Raise ArgoSetupError listing every problem found (the first two stop the checks)."""
    source = client.credentials.source
    try:
        await client.get("/version")
    except KubeApiError as exc:
        if exc.status in (401, 403):
            raise ArgoSetupError(
                [f"the Kubernetes API refused the credentials of {source}: {exc}"]
            ) from exc
        raise ArgoSetupError([str(exc)]) from exc
    except EngineUnavailableError as exc:
        raise ArgoSetupError([f"{exc} (credentials from {source})"]) from exc
    missing_crds = await _missing_crds(client)
    if missing_crds:
        raise ArgoSetupError(missing_crds)
    problems = await _missing_permissions(client, expected.namespace)
    problems += await _repository_problems(client, expected)
    if problems:
        raise ArgoSetupError(problems)


async def _missing_crds(client: KubeClient) -> list[str]:
    group = "/apis/argoproj.io/v1alpha1"
    try:
        resources = await client.get(group)
    except KubeApiError as exc:
        if exc.status == 404:
            return [
                "Argo Workflows is not installed: the API has no group argoproj.io/v1alpha1 "
                "(install Argo Workflows' CRDs)"
            ]
        raise ArgoSetupError([str(exc)]) from exc
    served = {r.get("name") for r in resources.get("resources", [])}
    return [
        f"the CRD {kind.plural}.argoproj.io is not installed"
        for kind in (WORKFLOWS, WORKFLOW_TEMPLATES, CRON_WORKFLOWS)
        if kind.plural not in served
    ]


async def _missing_permissions(client: KubeClient, namespace: str) -> list[str]:
    wanted = permissions()
    allowed = await asyncio.gather(*(_is_allowed(client, namespace, p) for p in wanted))
    missing = [str(p) for p, ok in zip(wanted, allowed, strict=True) if not ok]
    if not missing:
        return []
    return [
        f"the gateway's identity ({client.credentials.source}) may not, in namespace "
        f"{namespace!r}: {', '.join(missing)} (grant the Role that `tender argo role` prints)"
    ]


async def _is_allowed(client: KubeClient, namespace: str, permission: Permission) -> bool:
    attributes = {
        "namespace": namespace,
        "verb": permission.verb,
        "group": permission.group,
        "resource": permission.resource,
    }
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    if permission.name:
        attributes["name"] = permission.name
    review = await client.request(
        "POST",
        _REVIEWS,
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        },
    )
    return bool((review.get("status") or {}).get("allowed"))


async def _repository_problems(client: KubeClient, expected: Expected) -> list[str]:
    """Argo's repository for tender's Workflows must be tender's bucket (an endpoint written
    otherwise may be the same server seen from elsewhere: a warning); its key format decides
    where archived logs are found once Argo deleted a Workflow (a warning)."""
    where = f"ConfigMap {ARTIFACT_REPOSITORIES_CONFIGMAP!r} of namespace {expected.namespace!r}"
    try:
        config = await client.get(
            f"/api/v1/namespaces/{expected.namespace}/configmaps/{ARTIFACT_REPOSITORIES_CONFIGMAP}"
        )
    except KubeApiError as exc:
        if exc.status != 404:
            raise
        if expected.artifact_repository is not None:
            return [f"TENDER_ARGO_ARTIFACT_REPOSITORY={expected.artifact_repository}: no {where}"]
        _log.warning(
            "no %s: Argo's default artifact repository (the controller's) must be the bucket %r "
            "(not checked)",
            where,
            expected.bucket,
        )
        return []
    annotations = (config.get("metadata") or {}).get("annotations") or {}
    key = expected.artifact_repository or annotations.get(_DEFAULT_REPOSITORY)
    setting = (
        f"TENDER_ARGO_ARTIFACT_REPOSITORY={key}"
        if expected.artifact_repository
        else (f"the default artifact repository {key!r}")
    )
    if key is None:
        return [f"the {where} names no default repository: set TENDER_ARGO_ARTIFACT_REPOSITORY"]
    text = (config.get("data") or {}).get(key)
    if text is None:
        return [f"{setting}: the {where} has no key {key!r}"]
    s3: dict[str, Any] = (yaml.safe_load(text) or {}).get("s3") or {}
    if s3.get("bucket") != expected.bucket:
        return [
            f"{setting}: its S3 bucket is {s3.get('bucket')!r}, not tender's bucket "
            f"{expected.bucket!r} (TENDER_S3_BUCKET)"
        ]
    endpoint = urlsplit(expected.endpoint_url).netloc
    if endpoint and s3.get("endpoint") != endpoint:
        _log.warning(
            "%s: its S3 endpoint is %r, tender's %r: they must be the same server",
            setting,
            s3.get("endpoint"),
            endpoint,
        )
    key_format = expected.key_prefix + LOGS_KEY_FORMAT
    if s3.get("keyFormat") != key_format:
        _log.warning(
            "%s has keyFormat %r, not %r: the logs of executions whose Workflow Argo deleted "
            "(TTL) will not be found",
            setting,
            s3.get("keyFormat"),
            key_format,
        )
    return []
