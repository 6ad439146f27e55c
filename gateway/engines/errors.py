"""Errors raised by engines, whichever engine runs the manifests.

EngineError
├── ObjectNotFoundError
│   ├── WorkflowNotFoundError
│   ├── WorkflowTemplateNotFoundError
│   └── CronWorkflowNotFoundError
├── ObjectExistsError            (a name collision)
├── ManifestError
│   ├── ManifestInvalidError     (not a valid Argo manifest: missing field, unknown template, cycle)
│   └── ManifestRefusedError     (valid for Argo, but this engine does not support a field)
├── InvalidLabelSelectorError
├── WorkflowStateError           (an operation that the workflow's phase does not allow)
├── WatchExpiredError            (a watch's resource version is too old: list again)
└── EngineUnavailableError       (the engine cannot be reached or is not started)
"""

from __future__ import annotations

__all__ = [
    "CronWorkflowNotFoundError",
    "EngineError",
    "EngineUnavailableError",
    "InvalidLabelSelectorError",
    "ManifestError",
    "ManifestInvalidError",
    "ManifestRefusedError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "WatchExpiredError",
    "WorkflowNotFoundError",
    "WorkflowStateError",
    "WorkflowTemplateNotFoundError",
]


class EngineError(Exception):
    """Base class of every error an engine raises on purpose."""


class ObjectNotFoundError(EngineError):
    kind = "object"

    def __init__(self, name: str) -> None:
        super().__init__(f"{self.kind} {name!r} not found")
        self.name = name


class WorkflowNotFoundError(ObjectNotFoundError):
    kind = "Workflow"


class WorkflowTemplateNotFoundError(ObjectNotFoundError):
    kind = "WorkflowTemplate"


class CronWorkflowNotFoundError(ObjectNotFoundError):
    kind = "CronWorkflow"


class ObjectExistsError(EngineError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists")
        self.kind = kind
        self.name = name


class ManifestError(EngineError):
    """A manifest was refused at submission; `path` names the offending field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} {reason}" if path else reason)
        self.path = path
        self.reason = reason


class ManifestInvalidError(ManifestError):
    pass


class ManifestRefusedError(ManifestError):
    pass


class InvalidLabelSelectorError(EngineError):
    pass


class WorkflowStateError(EngineError):
    pass


class WatchExpiredError(EngineError):
    """Kubernetes' `410 Gone` on a watch: the changes after this version are no longer held."""


class EngineUnavailableError(EngineError):
    pass
