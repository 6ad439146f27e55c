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
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

from compiler import Pipeline
from gateway.builds import (
    BuildFailedError,
    BuildLog,
    BuildResult,
    LogEntry,
    expanded_copy,
    expanded_requirements,
    read_requirements,
    run_logged,
)

__all__ = [
    "DEFAULT_BUILD_TIMEOUT_S",
    "BuildResult",
    "LogEntry",
    "Virtualenvs",
    "build_environment",
    "environment_python",
    "remove_environment",
]

DEFAULT_BUILD_TIMEOUT_S = 900.0
_NO_VARS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Virtualenvs:
    """The embedded engine's step environments: one virtualenv per pipeline."""

    envs_dir: Path
    timeout_s: float = DEFAULT_BUILD_TIMEOUT_S

    async def build(
        self, pipeline: Pipeline, code_dir: Path, env_vars: Mapping[str, str]
    ) -> BuildResult:
        return await build_environment(
            pipeline.pipeline_name,
            code_dir,
            pipeline.container_config.requirements_path,
            self.envs_dir,
            timeout_s=self.timeout_s,
            env_vars=env_vars,
        )

    async def remove(self, pipeline_name: str) -> None:
        await remove_environment(pipeline_name, self.envs_dir)


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
    log = BuildLog()
    await asyncio.to_thread(envs_dir.mkdir, parents=True, exist_ok=True)
    folder = envs_dir / f".{pipeline_name}-{secrets.token_hex(4)}"
    try:
        await _build(_Build(folder, code_dir, deadline, log), requirements_path, python, env_vars)
        previous = await asyncio.to_thread(_switch_link, link, folder)
    except BuildFailedError as exc:
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
    log: BuildLog

    async def run(self, command: list[str]) -> None:
        await run_logged(command, self.code_dir, self.deadline, self.log)


async def _build(
    build: _Build, requirements_path: str | None, python: str, env_vars: Mapping[str, str]
) -> None:
    if not requirements_path:
        build.log.add("Creating the virtual environment (no requirements file)")
        await build.run([python, "-m", "venv", "--without-pip", str(build.folder)])
        return
    requirements, text = await asyncio.to_thread(
        read_requirements, build.code_dir, requirements_path
    )
    expanded = expanded_requirements(text, env_vars, build.log)
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
    async with expanded_copy(requirements, expanded) as copy:
        options = ["--no-input", "--disable-pip-version-check", "--no-color"]
        await build.run([*pip, "install", *options, "--progress-bar", "off", "-r", str(copy)])


def _gateway_pip(folder: Path) -> list[str]:
    """The gateway's own pip aimed at the new environment, or [] if it is too old for that."""
    try:
        version = tuple(int(p) for p in metadata.version("pip").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return []
    if version < (22, 3):
        return []
    return [sys.executable, "-m", "pip", "--python", str(folder / "bin" / "python")]


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
