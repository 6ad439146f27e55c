"""The file format of ``tender compile``: one ``pipeline:`` and optionally a ``deployment:`` or
a ``run:``, in YAML or JSON; and multi-document YAML out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn, Self

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from compiler.errors import CompileError
from compiler.manifests import CompileOptions, Manifest, compile_deployment, compile_run
from compiler.models import Deployment, Pipeline, Run, invalid

__all__ = ["Document", "compile_document", "dump_yaml", "parse_document", "raise_compile_error"]

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: Pipeline
    deployment: Deployment | None = None
    run: Run | None = None

    @model_validator(mode="after")
    def _one_use(self) -> Self:
        if self.deployment is not None and self.run is not None:
            raise invalid("document", "give a deployment or a run, not both")
        name = None if self.deployment is None else self.deployment.pipeline_name
        if name is not None and name != self.pipeline.pipeline_name:
            raise invalid(
                "pipeline_name",
                f"the deployment is of pipeline {name!r}, "
                f"but the document's pipeline is {self.pipeline.pipeline_name!r}",
            )
        return self


def parse_document(text: str) -> Document:
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise CompileError("document", "syntax", f"not valid YAML or JSON: {exc}") from exc
    try:
        return Document.model_validate(data)
    except ValidationError as exc:
        raise_compile_error(exc)


def raise_compile_error(exc: ValidationError, prefix: str = "") -> NoReturn:
    """Turn pydantic's first error into a CompileError naming the field and the rule."""
    error = exc.errors(include_url=False)[0]
    field = prefix
    for part in error["loc"]:
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    message = error["msg"].removeprefix("Value error, ")
    raise CompileError(field or "document", error["type"], message) from exc


def compile_document(document: Document, options: CompileOptions | None = None) -> list[Manifest]:
    if document.deployment is not None:
        return [compile_deployment(document.pipeline, document.deployment, options)]
    return [compile_run(document.pipeline, document.run or Run(), options)]


def dump_yaml(manifests: Sequence[Manifest]) -> str:
    """Multi-document YAML, block style for multi-line strings so that sources stay readable."""
    return yaml.dump_all(
        manifests, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100
    )


class _BlockDumper(_Dumper):  # type: ignore[valid-type,misc]
    pass


# YAML 1.1 parsers such as go-yaml, which kubectl and the argo CLI use, also read these as
# booleans, where PyYAML writes them bare: a parameter named "n" would arrive as false.
_YAML11_BOOLEANS = frozenset({"y", "Y", "n", "N"})


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else "'" if value in _YAML11_BOOLEANS else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)
