"""The ``tender`` command: one verb per daily action, a noun group per administration task.

Options override the ``TENDER_*`` environment variables they are named after. Each command
imports what it needs when it runs (the compiler, the store, the server), so that none pays for
the others' imports: ``python -X importtime -c "import gateway.cli"`` shows typer alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from gateway.settings import Settings

app = typer.Typer(
    name="tender",
    help="Run Python-function pipelines on Argo Workflows.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="SDK tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
database_app = typer.Typer(help="The store's database.", no_args_is_help=True)
app.add_typer(database_app, name="database")
argo_app = typer.Typer(help="What an Argo cluster needs for tender.", no_args_is_help=True)
app.add_typer(argo_app, name="argo")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where tender keeps its state (env TENDER_DATA_DIR, default ./.tender).",
        show_default=False,
    ),
]


def _settings(**overrides: Any) -> Settings:
    """The settings, or a message naming each wrong one and exit code 2."""
    from pydantic import ValidationError

    from gateway.settings import Settings

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
    from compiler import CompileError, compile_document, dump_yaml, parse_document

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
        str | None,
        typer.Option(
            help="Address to listen on (env TENDER_HOST, default 127.0.0.1).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on (env TENDER_PORT, default 8080).", show_default=False),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the platform's API (embedded defaults: SQLite, local storage, local engine)."""
    import asyncio
    import logging

    from gateway.engine_setup import check_engine
    from gateway.engines.argo import ArgoSetupError
    from gateway.services import check_storage
    from gateway.serving import serve as serve_app
    from gateway.storage import StorageUnavailableError

    settings = _settings(host=host, port=port, data_dir=data_dir)
    # tender's own log (tender.*): what happens, at INFO, such as each execution's Argo UI link.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tender").setLevel(logging.INFO)
    try:
        asyncio.run(check_storage(settings))
    except StorageUnavailableError as exc:
        typer.echo(f"tender: cannot use the {settings.storage} storage: {exc}", err=True)
        raise typer.Exit(code=1) from None
    try:
        asyncio.run(check_engine(settings))
    except ArgoSetupError as exc:
        typer.echo("tender: cannot run executions on Argo:", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
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


@token_app.command("list")
def token_list(data_dir: DataDir = None) -> None:
    """List the SDK tokens: name, id (the user they act as), creation date; never a secret."""
    from gateway.admin import list_sdk_tokens

    for token in list_sdk_tokens(_settings(data_dir=data_dir)):
        typer.echo(f"{token.name}\t{token.id}\t{token.created_at.isoformat()}")


@token_app.command("delete")
def token_delete(
    name: Annotated[str, typer.Argument(help="The name the token was created with.")],
    data_dir: DataDir = None,
) -> None:
    """Delete the SDK tokens with this name; their access tokens stop working at once."""
    from gateway.admin import TokenNotFoundError, delete_sdk_tokens

    try:
        deleted = delete_sdk_tokens(_settings(data_dir=data_dir), name)
    except TokenNotFoundError as exc:
        typer.echo(f"tender: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"tender: deleted {deleted} SDK token(s) named {name!r}", err=True)


@token_app.command("rotate")
def token_rotate(
    name: Annotated[str, typer.Argument(help="The name the token was created with.")],
    data_dir: DataDir = None,
) -> None:
    """Print a new secret for the SDK token with this name; the old one, and the access tokens
    issued for it, stop working at once. Pipelines and executions keep their owner."""
    from gateway.admin import TokenNotFoundError, rotate_sdk_token

    try:
        token = rotate_sdk_token(_settings(data_dir=data_dir), name)
    except TokenNotFoundError as exc:
        typer.echo(f"tender: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(token)


@database_app.command("upgrade")
def database_upgrade(data_dir: DataDir = None) -> None:
    """Bring the database's schema up to date (``tender serve`` also does, as it starts)."""
    from gateway.admin import upgrade_database

    settings = _settings(data_dir=data_dir)
    upgrade_database(settings)
    typer.echo("tender: the database schema is up to date", err=True)


@argo_app.command("role")
def argo_role(
    namespace: Annotated[
        str, typer.Option(help="The namespace of Argo's Workflows (TENDER_ARGO_NAMESPACE).")
    ] = "argo",
    name: Annotated[str, typer.Option(help="The Role's name.")] = "tender-gateway",
    rules: Annotated[
        bool, typer.Option("--rules", help="Print the rules alone (the Helm chart's file).")
    ] = False,
) -> None:
    """Print the Role the gateway's identity needs on Argo, as YAML for `kubectl apply -f -`."""
    import yaml

    from gateway.engines.argo.permissions import ROLE_RULES, role

    printed = ROLE_RULES if rules else role(name, namespace)
    sys.stdout.write(yaml.safe_dump(printed, sort_keys=False))
