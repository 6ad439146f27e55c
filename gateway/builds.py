"""What every build of a pipeline's dependencies shares: its log, the requirements file, pip.

A build runs pip on the gateway, in the pipeline's code folder, with a deadline; each line pip
prints goes to the pipeline's build logs, with the value of every environment variable the
requirements use (``${NAME}``) shown as ``${NAME}``. Mistakes in what the user gave end the build
with ``BuildFailedError``, whose message goes to the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol, TypedDict
from urllib.parse import quote

if TYPE_CHECKING:
    from compiler import Pipeline

__all__ = [
    "BuildFailedError",
    "BuildLog",
    "BuildResult",
    "LogEntry",
    "StepEnvironments",
    "expanded_copy",
    "expanded_requirements",
    "read_requirements",
    "run_logged",
]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_LINE = 1024 * 1024
# What pip may need from the gateway's environment: locale, proxies, certificates and the
# operator's PIP_* settings (a private index). Not the gateway's secrets, not PYTHONPATH.
_INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


class LogEntry(TypedDict):
    timestamp: str
    message: str


@dataclass(frozen=True)
class BuildResult:
    succeeded: bool
    python: Path | None
    """The environment's interpreter (a virtualenv build, on success); None otherwise."""
    logs: list[LogEntry] = field(default_factory=list)
    duration_s: float = 0.0


class StepEnvironments(Protocol):
    """Where a pipeline's requirements are installed when it is created: a virtualenv per
    pipeline (embedded engine, ``environments.py``) or an archive the steps unpack
    (Argo, ``step_dependencies.py``)."""

    async def build(
        self, pipeline: Pipeline, code_dir: Path, env_vars: Mapping[str, str]
    ) -> BuildResult: ...

    async def remove(self, pipeline_name: str) -> None: ...


class BuildFailedError(Exception):
    """A user mistake that ends the build; the message goes to the logs."""


@dataclass
class BuildLog:
    redactions: dict[str, str] = field(default_factory=dict)  # value -> "${NAME}"
    entries: list[LogEntry] = field(default_factory=list)

    def add(self, message: str) -> None:
        for value in sorted(self.redactions, key=len, reverse=True):
            message = message.replace(value, self.redactions[value])
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.entries.append({"timestamp": stamp, "message": message})


def read_requirements(code_dir: Path, requirements_path: str) -> tuple[Path, str]:
    """The requirements file inside ``code_dir`` and its text; never a path outside it."""
    parts = PurePosixPath(requirements_path).parts
    if requirements_path.startswith("/") or "\\" in requirements_path or ".." in parts:
        raise BuildFailedError(
            f"requirements_path {requirements_path!r} must be a relative path inside the folder"
        )
    file = code_dir.joinpath(*parts)
    if not file.resolve().is_relative_to(code_dir.resolve()):
        raise BuildFailedError(f"requirements_path {requirements_path!r} escapes the folder")
    if not file.is_file():
        raise BuildFailedError(f"requirements_path {requirements_path!r} is not in the folder")
    try:
        return file, file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BuildFailedError(f"{file.name} is not UTF-8 text: {exc}") from None


def expanded_requirements(text: str, env_vars: Mapping[str, str], log: BuildLog) -> str:
    """Replace each ``${NAME}`` with its value, and have the log show ``${NAME}`` instead."""
    for number, line in enumerate(text.splitlines(), start=1):
        for name in _VARIABLE.findall(line):
            if name not in env_vars:
                raise BuildFailedError(
                    f"line {number} of the requirements uses ${{{name}}}, "
                    "which is not a defined environment variable"
                )
            if value := env_vars[name]:
                # pip may print a URL's parts percent-encoded.
                log.redactions[value] = log.redactions[quote(value, safe="")] = f"${{{name}}}"
    return _VARIABLE.sub(lambda match: env_vars[match.group(1)], text)


@contextlib.asynccontextmanager
async def expanded_copy(requirements: Path, expanded: str) -> AsyncIterator[Path]:
    """The expanded text in a file next to the original, so that the relative paths it holds
    (``-r base.txt``, ``--find-links``) mean the same; removed afterwards."""
    copy = requirements.with_name(f".tender-requirements-{secrets.token_hex(4)}.txt")
    await asyncio.to_thread(copy.write_text, expanded, encoding="utf-8")
    try:
        yield copy
    finally:
        await asyncio.to_thread(copy.unlink, missing_ok=True)


async def run_logged(command: list[str], cwd: Path, deadline: float, log: BuildLog) -> None:
    """Run a command, logging each line it prints; raise BuildFailedError unless it succeeds."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=_subprocess_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # so that a timeout also stops what pip started
        limit=_MAX_LINE,
    )
    try:
        await asyncio.wait_for(_pump(process, log), timeout=max(deadline - time.monotonic(), 0))
    except TimeoutError:
        _kill(process)
        await process.wait()
        raise BuildFailedError("timed out") from None
    except BaseException:
        _kill(process)
        await process.wait()
        raise
    if process.returncode != 0:
        program = "pip" if "pip" in command else "venv"
        raise BuildFailedError(f"{program} exited with status {process.returncode}")


async def _pump(process: asyncio.subprocess.Process, log: BuildLog) -> None:
    assert process.stdout is not None
    while True:
        try:
            raw = await process.stdout.readline()
        except ValueError:  # a line longer than _MAX_LINE: keep its start
            raw = await process.stdout.read(_MAX_LINE)
        if not raw:
            break
        log.add(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    await process.wait()


def _kill(process: asyncio.subprocess.Process) -> None:
    # The whole group, even if pip itself has exited: a build backend may still hold stdout.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith("PIP_")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
