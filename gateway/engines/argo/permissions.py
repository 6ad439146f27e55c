"""The gateway's Role: everything the Argo engine does in its namespace, and nothing more.

Written down once, here: ``tender serve`` checks each of these permissions at start-up (a
SelfSubjectAccessReview per verb, ``checks.py``), and the Helm chart's Role is rendered from
``ROLE_RULES`` (``tender argo role`` prints the Role, ``--rules`` its rules alone; a test pins
the chart's copy). What each rule is for:

- Workflows: submit, read, list and watch (the tracker), stop (``spec.shutdown``), delete.
- WorkflowTemplates: one per endpoint deployment; Argo's controller reads them itself.
- CronWorkflows: one per periodic deployment; suspended and resumed with a patch.
- pods: which pod ran which node (list), the running ones' logs (``pods/log``), and deleting a
  deleted Workflow's pods (``deletecollection``), as the garbage collector would.
- secrets: the environment variables' Secret (``tender-environment``), written from the store,
  and each execution's (``tender-execution-<workflow>``), created when it starts and deleted
  when it ended; ``create`` cannot be limited to a name in Kubernetes RBAC, nor ``delete`` to
  names not known in advance.
- configmaps: read the namespace's ``artifact-repositories``, to check at start-up that Argo
  keeps artifacts in tender's bucket.

Creating a SelfSubjectAccessReview is allowed to every authenticated user (``system:basic-user``),
so it is not in the Role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler import CompileOptions
from gateway.engines.argo.settings import ARTIFACT_REPOSITORIES_CONFIGMAP

__all__ = ["ENVIRONMENT_SECRET", "ROLE_RULES", "Permission", "permissions", "role"]

ENVIRONMENT_SECRET = CompileOptions().secret_name  # the Secret the manifests refer to

ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["workflows"],
        "verbs": ["create", "get", "list", "watch", "patch", "delete"],
    },
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["workflowtemplates"],
        "verbs": ["create", "get", "update", "delete"],
    },
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["cronworkflows"],
        "verbs": ["create", "get", "update", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "deletecollection"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]},
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": [ENVIRONMENT_SECRET],
        "verbs": ["get", "update", "patch"],
    },
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [ARTIFACT_REPOSITORIES_CONFIGMAP],
        "verbs": ["get"],
    },
]


@dataclass(frozen=True)
class Permission:
    """One verb on one resource, as a SelfSubjectAccessReview asks about it."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    name: str = ""

    def __str__(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        qualified = f"{resource}.{self.group}" if self.group else resource
        return f"{self.verb} {qualified}" + (f" {self.name!r}" if self.name else "")


def permissions() -> list[Permission]:
    """Every (verb, resource, name) of ROLE_RULES, one by one."""
    found = []
    for rule in ROLE_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                plural, _, subresource = resource.partition("/")
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [""]:
                        found.append(Permission(verb, group, plural, subresource, name))
    return found


def role(name: str, namespace: str) -> dict[str, Any]:
    """The Role as a manifest (the chart renders the same rules)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": ROLE_RULES,
    }
