"""The compiler: pipeline definitions and their mappings become Argo manifests.

Pure: everything it needs is an argument; it reads no environment, clock, file or network,
and the same input gives the same bytes.
"""

from __future__ import annotations

from compiler.documents import Document, compile_document, dump_yaml, parse_document
from compiler.errors import CompileError
from compiler.manifests import CompileOptions, Manifest, compile_deployment, compile_run
from compiler.models import (
    ContainerConfig,
    Deployment,
    Input,
    InputSource,
    Output,
    OutputDestination,
    Pipeline,
    Run,
    Step,
    StepInput,
)
from compiler.values import DataType

__all__ = [
    "CompileError",
    "CompileOptions",
    "ContainerConfig",
    "DataType",
    "Deployment",
    "Document",
    "Input",
    "InputSource",
    "Manifest",
    "Output",
    "OutputDestination",
    "Pipeline",
    "Run",
    "Step",
    "StepInput",
    "compile_deployment",
    "compile_document",
    "compile_run",
    "dump_yaml",
    "parse_document",
]
