"""A pipeline's requirements for steps that run in real images (the Argo engine).

No step calls pip or needs the internet: when a pipeline is created, the gateway installs its
requirements into a folder with ``pip install --target`` for the step image's Python and
platform, wheels only (``--python-version X.Y --implementation cp --platform P
--only-binary=:all:``), packs the folder as ``dependencies.tar.gz`` under one ``deps/`` root
(``compiler.keys``), and the step runner puts it on ``sys.path``. Local folders among the
requirements are still built by pip, with the gateway's Python: a pure-Python one gives a wheel
every step can use, one with compiled code a wheel pip then refuses for another Python.

What cannot be built that way is refused at creation, in the pipeline's build logs: an image
whose Python version its tag does not say, a requirement published only as source, a wheel for
another platform. The Python version comes from the image's tag (``python:3.12-slim``); the
platform from ``TENDER_ARGO_STEP_PLATFORM`` (manylinux tags: pip also accepts the older ones).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler import Pipeline
from compiler.keys import dependencies_key
from gateway.archives import write_archive
from gateway.builds import (
    BuildFailedError,
    BuildLog,
    BuildResult,
    expanded_copy,
    expanded_requirements,
    read_requirements,
    run_logged,
)
from gateway.storage import Storage

__all__ = ["DependencyArchives", "image_python_version"]

_IMAGE_PYTHON = re.compile(r"(?:^|/)python(?:-cuda)?:(3\.\d+)(?![\d.])")
DEPS_ARCHIVE_ROOT = "deps"


def image_python_version(image: str) -> str | None:
    """``python:3.12-slim`` -> ``3.12``; None when the tag does not say."""
    match = _IMAGE_PYTHON.search(image)
    return match.group(1) if match else None


@dataclass(frozen=True)
class DependencyArchives:
    """Builds each pipeline's dependencies archive into the artifact repository."""

    storage: Storage
    default_image: str
    platforms: tuple[str, ...]
    work_dir: Path
    timeout_s: float

    async def build(
        self, pipeline: Pipeline, code_dir: Path, env_vars: Mapping[str, str]
    ) -> BuildResult:
        started = time.monotonic()
        log = BuildLog()
        key = dependencies_key(pipeline.pipeline_name)
        try:
            await self.storage.delete(key)  # a previous pipeline's, by the same name
            size = await self._build(pipeline, code_dir, env_vars, log, started + self.timeout_s)
        except BuildFailedError as exc:
            log.add(f"Environment build failed: {exc}")
            return BuildResult(False, None, log.entries, time.monotonic() - started)
        duration = time.monotonic() - started
        if size is not None:
            log.add(f"Dependencies archive ready ({size / 1e6:.1f} MB)")
        log.add(f"Environment ready in {duration:.1f} s")
        return BuildResult(True, None, log.entries, duration)

    async def remove(self, pipeline_name: str) -> None:
        """Nothing outside the pipeline's keys, which go with the pipeline."""

    async def _build(
        self,
        pipeline: Pipeline,
        code_dir: Path,
        env_vars: Mapping[str, str],
        log: BuildLog,
        deadline: float,
    ) -> int | None:
        config = pipeline.container_config
        image = config.language or self.default_image
        if not config.requirements_path:
            log.add(f"No requirements file: the steps run in {image} with its own packages")
            return None
        version = image_python_version(image)
        if version is None:
            raise BuildFailedError(
                f"cannot tell which Python the image {image!r} runs, so its packages cannot be "
                "built: name an image whose tag gives the version, such as python:3.12-slim"
            )
        requirements, text = await asyncio.to_thread(
            read_requirements, code_dir, config.requirements_path
        )
        expanded = expanded_requirements(text, env_vars, log)
        platforms = ", ".join(self.platforms)
        log.add(
            f"Installing requirements from {config.requirements_path} for {image} "
            f"(Python {version}, {platforms}; wheels only):"
        )
        for line in text.splitlines():
            if line.strip():
                log.add(f"  {line}")
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="deps-") as scratch:
            target = Path(scratch) / DEPS_ARCHIVE_ROOT
            async with expanded_copy(requirements, expanded) as copy:
                command = [*self._pip(version, target), "-r", str(copy)]
                try:
                    await run_logged(command, code_dir, deadline, log)
                except BuildFailedError as exc:
                    raise BuildFailedError(
                        f"{exc}. The steps' packages are installed from wheels for Python "
                        f"{version} on {platforms}: a requirement published only as source, "
                        "or built for another Python or platform, cannot be installed this way"
                    ) from None
            archive = Path(scratch) / "dependencies.tar.gz"
            await asyncio.to_thread(_pack, target, archive)
            await self.storage.put_file(dependencies_key(pipeline.pipeline_name), archive)
            return archive.stat().st_size

    def _pip(self, version: str, target: Path) -> list[str]:
        platforms = [option for p in self.platforms for option in ("--platform", p)]
        return [
            *(sys.executable, "-m", "pip", "install", "--no-input", "--no-color"),
            *("--disable-pip-version-check", "--progress-bar", "off", "--no-compile"),
            *("--target", str(target), "--python-version", version, "--implementation", "cp"),
            *platforms,
            "--only-binary=:all:",
        ]


def _pack(folder: Path, archive: Path) -> None:
    if not folder.exists():
        folder.mkdir(parents=True)
    shutil.rmtree(folder / "bin", ignore_errors=True)  # scripts for the gateway's interpreter
    with archive.open("wb") as sink:
        write_archive(folder, DEPS_ARCHIVE_ROOT, sink)
