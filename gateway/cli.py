"""The ``tender`` command: one verb per daily action, a noun group per administration task."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from compiler import CompileError, compile_document, dump_yaml, parse_document

app = typer.Typer(
    name="tender",
    help="Run Python-function pipelines on Argo Workflows.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main() -> None:
    """Keep typer from folding a single command into the top level."""


@app.command("compile")
def compile_(
    file: Annotated[
        Path,
        typer.Argument(
            help="A YAML or JSON file with a pipeline and a run or deployment.",
            exists=True,
            dir_okay=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the manifests here instead of stdout."),
    ] = None,
) -> None:
    """Print the Argo manifests of a pipeline file as multi-document YAML."""
    try:
        manifests = compile_document(parse_document(file.read_text(encoding="utf-8")))
    except CompileError as exc:
        typer.echo(f"tender: {file}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    text = dump_yaml(manifests)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
