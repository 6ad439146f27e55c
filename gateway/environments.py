"""Each pipeline's own Python environment, built when the pipeline is created (embedded mode).

A virtualenv per pipeline, at ``<envs_dir>/<pipeline>``, so that every pipeline runs with its
own interpreter and packages. It is created ``--without-pip`` (about 60 ms) and the gateway's
own pip installs into it with ``pip --python`` (pip 22.3 and later), which saves installing pip
in every environment.

Each build goes to a fresh folder ``<envs_dir>/.<pipeline>-<random>`` that never moves, and
``<envs_dir>/<pipeline>`` is a symbolic link switched to it with one ``os.replace`` once the build
succeeded. A virtualenv cannot be renamed after the fact: pip writes its absolute path into the
scripts it installs (``#!<venv>/bin/python``). A failed build removes its folder and leaves the
previous environment in place.

Mistakes in what the user gave (a missing or escaping requirements file, a bad requirement, an
undefined ``${VAR}``, a timeout) give a failed BuildResult whose logs say why, never an
exception. The logs never hold the value of a variable, only its ``${NAME}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import TypedDict
from urllib.parse import quote

__all__ = [
    "DEFAULT_BUILD_TIMEOUT_S",
    "BuildResult",
    "LogEntry",
    "build_environment",
    "environment_python",
    "remove_environment",
]

DEFAULT_BUILD_TIMEOUT_S = 900.0
_NO_VARS: Mapping[str, str] = MappingProxyType({})
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
    """The environment's interpreter, through the ``<envs_dir>/<pipeline>`` link, on success."""
    logs: list[LogEntry] = field(default_factory=list)
    duration_s: float = 0.0


class _BuildFailedError(Exception):
    """A user mistake that ends the build; the message goes to the logs."""


@dataclass
class _Log:
    redactions: dict[str, str] = field(default_factory=dict)  # value -> "${NAME}"
    entries: list[LogEntry] = field(default_factory=list)

    def add(self, message: str) -> None:
        for value in sorted(self.redactions, key=len, reverse=True):
            message = message.replace(value, self.redactions[value])
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.entries.append({"timestamp": stamp, "message": message})


def environment_python(pipeline_name: str, envs_dir: Path) -> Path:
    """The interpreter a pipeline's steps run with, once its environment is built."""
    return envs_dir / _checked_name(pipeline_name) / "bin" / "python"


async def build_environment(
    pipeline_name: str,
    code_dir: Path,
    requirements_path: str | None,
    envs_dir: Path,
    *,
    python: str = sys.executable,
    env_vars: Mapping[str, str] = _NO_VARS,
    timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
) -> BuildResult:
    """Build the pipeline's virtualenv and install its requirements (a path in ``code_dir``)."""
    link = envs_dir / _checked_name(pipeline_name)
    started = time.monotonic()
    deadline = started + timeout_s
    log = _Log()
    await asyncio.to_thread(envs_dir.mkdir, parents=True, exist_ok=True)
    folder = envs_dir / f".{pipeline_name}-{secrets.token_hex(4)}"
    try:
        await _build(_Build(folder, code_dir, deadline, log), requirements_path, python, env_vars)
        previous = await asyncio.to_thread(_switch_link, link, folder)
    except _BuildFailedError as exc:
        log.add(f"Environment build failed: {exc}")
        await asyncio.to_thread(shutil.rmtree, folder, True)
        duration = time.monotonic() - started
        return BuildResult(succeeded=False, python=None, logs=log.entries, duration_s=duration)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    if previous is not None and previous != folder:
        await asyncio.to_thread(shutil.rmtree, previous, True)
    duration = time.monotonic() - started
    log.add(f"Environment ready in {duration:.1f} s")
    python_path = link / "bin" / "python"
    return BuildResult(succeeded=True, python=python_path, logs=log.entries, duration_s=duration)


async def remove_environment(pipeline_name: str, envs_dir: Path) -> None:
    """Remove the pipeline's environment, if it has one."""
    link = envs_dir / _checked_name(pipeline_name)
    target = await asyncio.to_thread(_link_target, link)
    await asyncio.to_thread(link.unlink, missing_ok=True)
    if target is not None:
        await asyncio.to_thread(shutil.rmtree, target, True)


@dataclass(frozen=True)
class _Build:
    folder: Path  # the new environment
    code_dir: Path  # where pip runs, so that relative paths mean what the user meant
    deadline: float  # time.monotonic()
    log: _Log

    async def run(self, command: list[str]) -> None:
        await _run(command, self.code_dir, self.deadline, self.log)


async def _build(
    build: _Build, requirements_path: str | None, python: str, env_vars: Mapping[str, str]
) -> None:
    if not requirements_path:
        build.log.add("Creating the virtual environment (no requirements file)")
        await build.run([python, "-m", "venv", "--without-pip", str(build.folder)])
        return
    requirements = _requirements_file(build.code_dir, requirements_path)
    text = await asyncio.to_thread(_read_text, requirements)
    expanded = _expand(text, env_vars, build.log)
    pip = _gateway_pip(build.folder)
    build.log.add("Creating the virtual environment")
    # Without a recent enough pip in the gateway, the environment gets its own.
    await build.run([python, "-m", "venv", *(["--without-pip"] if pip else []), str(build.folder)])
    build.log.add(f"Installing requirements from {requirements_path}:")
    for line in text.splitlines():
        if line.strip():
            build.log.add(f"  {line}")
    pip = pip or [str(build.folder / "bin" / "python"), "-m", "pip"]
    await _install(build, pip, requirements, expanded)


async def _install(build: _Build, pip: list[str], requirements: Path, expanded: str) -> None:
    # The expanded copy sits next to the original, so that the relative paths it holds
    # (``-r base.txt``, ``--find-links``) mean the same.
    copy = requirements.with_name(f".tender-requirements-{secrets.token_hex(4)}.txt")
    await asyncio.to_thread(copy.write_text, expanded, encoding="utf-8")
    try:
        options = ["--no-input", "--disable-pip-version-check", "--no-color"]
        await build.run([*pip, "install", *options, "--progress-bar", "off", "-r", str(copy)])
    finally:
        await asyncio.to_thread(copy.unlink, missing_ok=True)


def _requirements_file(code_dir: Path, requirements_path: str) -> Path:
    parts = PurePosixPath(requirements_path).parts
    if requirements_path.startswith("/") or "\\" in requirements_path or ".." in parts:
        raise _BuildFailedError(
            f"requirements_path {requirements_path!r} must be a relative path inside the folder"
        )
    file = code_dir.joinpath(*parts)
    if not file.resolve().is_relative_to(code_dir.resolve()):
        raise _BuildFailedError(f"requirements_path {requirements_path!r} escapes the folder")
    if not file.is_file():
        raise _BuildFailedError(f"requirements_path {requirements_path!r} is not in the folder")
    return file


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _BuildFailedError(f"{file.name} is not UTF-8 text: {exc}") from None


def _expand(text: str, env_vars: Mapping[str, str], log: _Log) -> str:
    """Replace each ``${NAME}`` with its value, and have the log show ``${NAME}`` instead."""
    for number, line in enumerate(text.splitlines(), start=1):
        for name in _VARIABLE.findall(line):
            if name not in env_vars:
                raise _BuildFailedError(
                    f"line {number} of the requirements uses ${{{name}}}, "
                    "which is not a defined environment variable"
                )
            if value := env_vars[name]:
                # pip may print a URL's parts percent-encoded.
                log.redactions[value] = log.redactions[quote(value, safe="")] = f"${{{name}}}"
    return _VARIABLE.sub(lambda match: env_vars[match.group(1)], text)


def _gateway_pip(folder: Path) -> list[str]:
    """The gateway's own pip aimed at the new environment, or [] if it is too old for that."""
    try:
        version = tuple(int(p) for p in metadata.version("pip").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return []
    if version < (22, 3):
        return []
    return [sys.executable, "-m", "pip", "--python", str(folder / "bin" / "python")]


async def _run(command: list[str], cwd: Path, deadline: float, log: _Log) -> None:
    """Run a command, logging each line it prints; raise _BuildFailedError unless it succeeds."""
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
        raise _BuildFailedError("timed out") from None
    except BaseException:
        _kill(process)
        await process.wait()
        raise
    if process.returncode != 0:
        program = "pip" if "pip" in command else "venv"
        raise _BuildFailedError(f"{program} exited with status {process.returncode}")


async def _pump(process: asyncio.subprocess.Process, log: _Log) -> None:
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


def _switch_link(link: Path, folder: Path) -> Path | None:
    """Point ``link`` at ``folder`` in one step; return the folder it pointed at before."""
    previous = _link_target(link)
    temporary = link.with_name(f".{link.name}.link-{secrets.token_hex(4)}")
    temporary.symlink_to(folder.name, target_is_directory=True)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # a plain folder, from a manual install
    os.replace(temporary, link)
    return previous


def _link_target(link: Path) -> Path | None:
    """The build folder ``link`` points at; None for anything this module did not make."""
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    if "/" in target or not target.startswith(f".{link.name}-"):
        return None
    return link.parent / target


def _checked_name(pipeline_name: str) -> str:
    # Pipeline names are DNS labels by then (compiler.models); anything else is a bug.
    if not pipeline_name or pipeline_name.startswith(".") or "/" in pipeline_name:
        raise ValueError(f"pipeline name {pipeline_name!r} cannot name an environment folder")
    return pipeline_name
