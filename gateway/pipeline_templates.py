"""Pipeline templates: ready pipelines shipped with tender, from its ``examples/`` folder.

Each ``<name>.yaml`` pipeline file there whose ``container_config.local_folder`` is a folder
beside it is a template named after its pipeline; ``create_pipeline(name,
pipeline_template_name=...)`` creates a pipeline from that definition and that folder's code.
A deployment in the file becomes the template's recommended mappings. Files that are not such
pipelines are left out, so that a broken example never hides the others.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import ValidationError

from compiler import CompileError, Deployment, Pipeline, parse_document
from compiler.documents import raise_compile_error
from gateway.errors import BadRequestError, NotFoundError

if TYPE_CHECKING:
    from gateway.services import Services

__all__ = [
    "PipelineTemplate",
    "load_templates",
    "pipeline_from_template",
    "template_details",
    "template_reference",
    "templates_of",
]

_VERSION = "1"


@dataclass(frozen=True)
class PipelineTemplate:
    pipeline: Pipeline
    code_dir: Path
    deployment: Deployment | None

    @property
    def name(self) -> str:
        return self.pipeline.pipeline_name


def load_templates(folder: Path | None) -> dict[str, PipelineTemplate]:
    """The templates of ``folder`` by name; none without a folder."""
    found: dict[str, PipelineTemplate] = {}
    if folder is None or not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.yaml")):
        try:
            document = parse_document(path.read_text(encoding="utf-8"))
        except (CompileError, OSError, UnicodeDecodeError):
            continue
        local = document.pipeline.container_config.local_folder
        code_dir = (folder / local).resolve() if local else None
        if code_dir is None or not code_dir.is_dir() or not code_dir.is_relative_to(folder):
            continue
        found.setdefault(
            document.pipeline.pipeline_name,
            PipelineTemplate(document.pipeline, code_dir, document.deployment),
        )
    return found


async def templates_of(services: Services) -> dict[str, PipelineTemplate]:
    """Read at each request: a few small files, and an operator may add one at any time."""
    folder = services.settings.resolved_pipeline_templates_dir
    return await asyncio.to_thread(load_templates, folder)


def template_reference(template: PipelineTemplate) -> dict[str, Any]:
    """An item of ``list_pipeline_templates``."""
    name = template.name
    return {
        "name": name,
        "version": _VERSION,
        "enabled": True,
        "display_name": name.replace("-", " ").capitalize(),
        "description": template.pipeline.description or "",
        "hosting_type": "self-hosted",
        "model_family": None,
    }


def template_details(template: PipelineTemplate) -> dict[str, Any]:
    """``get_pipeline_template``: the reference, the pipeline's inputs and outputs, and the
    mappings its example deployment uses, if it has one."""
    pipeline, deployment = template.pipeline, template.deployment
    inputs = [
        {
            "name": i.name,
            "data_type": i.data_type.value,
            "is_required": i.required,
            "default_value": i.default_value,
            "description": i.description,
        }
        for i in pipeline.inputs
    ]
    outputs = [
        {"name": o.name, "data_type": o.data_type.value, "description": o.description}
        for o in pipeline.outputs
    ]
    mapped = [] if deployment is None else deployment.inputs_mapping
    destinations = [] if deployment is None else deployment.outputs_mapping
    return {
        **template_reference(template),
        "inputs": inputs,
        "outputs": outputs,
        "recommended_inputs_mapping": [
            m.model_dump(mode="json", exclude_none=True) for m in mapped
        ],
        "recommended_outputs_mapping": [
            m.model_dump(mode="json", exclude_none=True) for m in destinations
        ],
    }


def pipeline_from_template(
    templates: dict[str, PipelineTemplate], body: dict[str, Any]
) -> tuple[Pipeline, BinaryIO]:
    """The pipeline ``{"pipeline_name", "pipeline_template_name"}`` asks for, and its code as
    the archive ``create_pipeline`` takes."""
    extra = sorted(set(body) - {"pipeline_name", "pipeline_template_name"})
    if extra:
        raise BadRequestError(
            f"a pipeline made from a template takes only its name, not {', '.join(extra)}",
            name="InvalidBody",
        )
    template_name = body["pipeline_template_name"]
    template = templates.get(template_name) if isinstance(template_name, str) else None
    if template is None:
        raise NotFoundError(
            f"pipeline template {template_name!r} not found", name="PipelineTemplateNotFound"
        )
    definition = template.pipeline.model_dump(mode="json", exclude_unset=True)
    definition["pipeline_name"] = body.get("pipeline_name")
    try:
        pipeline = Pipeline.model_validate(definition)
    except ValidationError as exc:
        raise_compile_error(exc)
    return pipeline, _code_archive(template.code_dir)


def _code_archive(folder: Path) -> BinaryIO:
    """The folder's regular files as the SDK sends a ``local_folder`` (a tar.gz of relative
    paths); links are left out, so that a template never ships a file from elsewhere."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    buffer.seek(0)
    return buffer
