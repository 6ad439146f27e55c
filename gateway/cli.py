"""The ``tender`` command: one verb per daily action, a noun group per administration task.

Options override the ``TENDER_*`` environment variables they are named after. The server and
the store are imported inside the commands that use them, so that ``tender compile`` starts
without loading them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from compiler import CompileError, compile_document, dump_yaml, parse_document
from gateway.settings import Settings

app = typer.Typer(
    name="tender",
    help="Run Python-function pipelines on Argo Workflows.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="SDK tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where tender keeps its state [env: TENDER_DATA_DIR].",
        show_default=False,
    ),
]


def _settings(**overrides: Any) -> Settings:
    """The settings, or a message naming each wrong one and exit code 2."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            setting = "_".join(str(part) for part in error["loc"]).upper()
            where = f"TENDER_{setting}: " if setting else ""
            typer.echo(f"tender: {where}{error['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(code=2) from None


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


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="[env: TENDER_HOST, default 127.0.0.1]", show_default=False)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="[env: TENDER_PORT, default 8080]", show_default=False)
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the platform's API (embedded defaults: SQLite, local storage, local engine)."""
    import asyncio

    from gateway.services import check_storage
    from gateway.serving import serve as serve_app
    from gateway.storage import StorageUnavailableError

    settings = _settings(host=host, port=port, data_dir=data_dir)
    try:
        asyncio.run(check_storage(settings))
    except StorageUnavailableError as exc:
        typer.echo(f"tender: cannot use the {settings.storage} storage: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(
        f"tender: serving {settings.resolved_external_url} (data in {settings.data_dir})", err=True
    )
    serve_app(settings)


@token_app.command("create")
def token_create(
    data_dir: DataDir = None,
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "default",
) -> None:
    """Print a new SDK token (for CRAFT_AI_SDK_TOKEN), and nothing else."""
    from gateway.admin import create_sdk_token

    typer.echo(create_sdk_token(_settings(data_dir=data_dir), name))
