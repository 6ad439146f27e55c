"""Environment variables: every execution sees them all, and a mapping may read one.

On Argo they live in the Kubernetes Secret named by ``CompileOptions.secret_name``, which
manifests only ever reference (``envFrom`` for all of them, ``secretKeyRef`` for a mapped input);
on the embedded engine ``secret_lookup`` reads them from the store when a step starts. A value
never goes into a manifest, a recorded input, a log line or an error message: messages name the
variable.

Values are kept as given in the store's database, not encrypted with a key of the gateway's. The
SDK's list returns them, so they must be recoverable; and whoever can read the database can read
the access-token signing key kept next to them, mint a token and list the variables through the
API. A key in the data dir would protect nothing on SQLite (the database is in the same folder)
and would break several gateways sharing one PostgreSQL; the database's own access control and
encryption at rest are the protection, as etcd's are for the Secret on a cluster.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from compiler import CompileOptions
from compiler.execution_secret import SDK_ENVIRONMENT
from gateway.engines.local.settings import SecretLookup
from gateway.errors import BadRequestError, NotFoundError, PayloadTooLargeError
from gateway.store import EnvironmentVariableRepository

if TYPE_CHECKING:  # engine_setup.py wires secret_lookup into the engine it builds
    from gateway.services import Services

__all__ = [
    "MAX_VALUE_BYTES",
    "NoVariableSecret",
    "VariableSecret",
    "check_name",
    "compile_options",
    "delete_variable",
    "list_variables",
    "put_variables",
    "secret_lookup",
    "variable_values",
]

# A Kubernetes Secret key is at most 253 characters; an identifier, so that the shell, Python's
# os.environ and ${NAME} in requirements files all read it.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,252}")
# What tender and Argo set in a step: a variable of the same name would replace it.
_RESERVED_PREFIXES = ("TENDER_", "ARGO_")
_RESERVED_NAMES = frozenset({"CRAFT_AI_EXECUTION_ID", *SDK_ENVIRONMENT})
# Linux refuses a single environment string over 128 KiB (MAX_ARG_STRLEN); a Secret holds 1 MiB.
MAX_VALUE_BYTES = 64 * 1024
_SECRET_NAME = CompileOptions().secret_name


class VariableSecret(Protocol):
    """Where steps read the variables from, kept in step with the store after each change:
    the Secret on a cluster (``gateway.engines.argo.secrets``); nothing for the embedded
    engine, which reads the store itself (``secret_lookup``)."""

    async def changed(self, changes: Mapping[str, str | None]) -> None:
        """These variables now have these values (None: deleted) in the store."""
        ...


class NoVariableSecret:
    async def changed(self, changes: Mapping[str, str | None]) -> None:
        return None


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadRequestError(
            f"environment variable name {name!r} is not a valid identifier "
            "(letters, digits and '_', not starting with a digit, at most 253 characters)",
            name="InvalidEnvironmentVariableName",
        )
    if name.startswith(_RESERVED_PREFIXES) or name in _RESERVED_NAMES:
        raise BadRequestError(
            f"environment variable name {name!r} is reserved: tender sets it in every step",
            name="InvalidEnvironmentVariableName",
        )
    return name


def _check_value(name: str, value: object) -> str:
    # The messages name the variable, never its value.
    if not isinstance(value, str):
        raise BadRequestError(
            f"the value of environment variable {name!r} must be a string, "
            f"not {type(value).__name__}",
            name="InvalidEnvironmentVariableValue",
        )
    if "\0" in value:
        raise BadRequestError(
            f"the value of environment variable {name!r} contains a NUL character",
            name="InvalidEnvironmentVariableValue",
        )
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise PayloadTooLargeError(
            f"the value of environment variable {name!r} is over {MAX_VALUE_BYTES} bytes",
            name="EnvironmentVariableTooLarge",
        )
    return value


async def put_variables(services: Services, body: object) -> list[str]:
    """Create or update the variables of ``{"environment_variables": {name: value}}``: all of
    them, or none if one is refused. Returns their names."""
    given = body.get("environment_variables") if isinstance(body, dict) else None
    if not isinstance(given, dict) or not given:
        raise BadRequestError(
            'the body must be {"environment_variables": {"<name>": "<value>", ...}}',
            name="InvalidBody",
        )
    checked = {check_name(str(name)): _check_value(str(name), v) for name, v in given.items()}
    await services.in_store(services.variables.put, checked, datetime.now(UTC))
    # After the store: a refused Secret write answers 503, and the same PUT again fixes both.
    await services.variable_secret.changed(checked)
    return sorted(checked)


async def list_variables(services: Services) -> dict[str, str]:
    variables: dict[str, str] = await services.in_store(services.variables.all)
    return variables


async def delete_variable(services: Services, name: str) -> str:
    """The deleted variable's value (the SDK's answer holds it)."""
    value: str | None = await services.in_store(services.variables.delete, name)
    if value is None:
        raise NotFoundError(
            f"environment variable {name!r} not found", name="EnvironmentVariableNotFound"
        )
    await services.variable_secret.changed({name: None})
    return value


async def variable_values(services: Services) -> Mapping[str, str]:
    """For ``${NAME}`` in requirements files, expanded when a pipeline's environment is built."""
    return await list_variables(services)


def compile_options(services: Services) -> CompileOptions:
    """What the compiler needs to know of this installation (steps read every variable from
    the Secret when they start: the manifests name none of them)."""
    return CompileOptions(
        key_prefix=services.settings.key_prefix, default_image=services.settings.argo_step_image
    )


def secret_lookup(variables: EnvironmentVariableRepository) -> SecretLookup:
    """The embedded engine's Secret of the environment variables: the stored variables as they
    are when a step starts stand for the Secret the compiler names; there is no other Secret."""

    async def lookup(secret_name: str) -> Mapping[str, str] | None:
        if secret_name != _SECRET_NAME:
            return None
        return await asyncio.to_thread(variables.all)

    return lookup
