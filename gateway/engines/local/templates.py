"""WorkflowTemplates: checked, stored, and kept in memory once read (this engine is the only
writer of its templates, so the copy never goes stale)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from gateway.engines.base import Manifest
from gateway.engines.errors import (
    ManifestInvalidError,
    ObjectExistsError,
    WorkflowTemplateNotFoundError,
)
from gateway.engines.local.clock import Clock
from gateway.engines.local.objects import new_object
from gateway.engines.local.specs import apply_template_defaults
from gateway.engines.local.support import WORKFLOW_TEMPLATE, check_supported
from gateway.engines.local.validation import validate_metadata, validate_spec
from gateway.store import ObjectRecord, WorkflowTemplateRepository

__all__ = ["TemplateCatalog"]

T = TypeVar("T")
StoreCall = Callable[..., Awaitable[Any]]


class TemplateCatalog:
    def __init__(
        self,
        repository: WorkflowTemplateRepository,
        clock: Clock,
        namespace: str,
        *,
        read: StoreCall,
        write: StoreCall,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._namespace = namespace
        self._read = read
        self._write = write
        self._cache: dict[str, Manifest] = {}

    async def create(self, manifest: Manifest) -> Manifest:
        template = _checked(manifest)
        if "name" not in template["metadata"]:
            raise ManifestInvalidError("metadata.name", "is required")
        now = self._clock.now()
        template = new_object(template, self._namespace, now)
        metadata = template["metadata"]
        record = ObjectRecord(metadata["name"], self._namespace, metadata["uid"], template, now)
        if not await self._write(self._repository.insert, record):
            raise ObjectExistsError("WorkflowTemplate", record.name)
        self._cache[record.name] = template
        return copy(template)

    async def update(self, manifest: Manifest) -> Manifest:
        template = _checked(manifest)
        name = template["metadata"].get("name", "")
        current = await self.shared(name)
        kept = {k: current["metadata"][k] for k in _SERVER_METADATA if k in current["metadata"]}
        updated = copy({**template, "metadata": {**template["metadata"], **kept}})
        self._cache.pop(name, None)
        await self._write(self._repository.replace, name, updated)
        self._cache[name] = updated
        return copy(updated)

    async def get(self, name: str) -> Manifest:
        return copy(await self.shared(name))

    async def shared(self, name: str) -> Manifest:
        """The template itself, not a copy: never change it in place."""
        cached = self._cache.get(name)
        if cached is None:
            record = await self._read(self._repository.get, name)
            if record is None:
                raise WorkflowTemplateNotFoundError(name)
            cached = self._cache.setdefault(name, record.manifest)
        return cached

    async def delete(self, name: str) -> None:
        self._cache.pop(name, None)
        if not await self._write(self._repository.delete, name):
            raise WorkflowTemplateNotFoundError(name)


_SERVER_METADATA = ("uid", "namespace", "creationTimestamp")


def _checked(manifest: Manifest) -> Manifest:
    check_supported(manifest, WORKFLOW_TEMPLATE)
    validate_metadata(manifest, "WorkflowTemplate")
    validate_spec(apply_template_defaults(manifest["spec"]), "spec", needs_entrypoint=False)
    return manifest


def copy(manifest: Manifest) -> Manifest:
    copied: Manifest = orjson.loads(orjson.dumps(manifest))
    return copied
