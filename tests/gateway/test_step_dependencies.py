"""Dependency archives for steps in real images: real pip, offline (local packages, --no-index)."""

from __future__ import annotations

import asyncio
import io
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from compiler import Pipeline
from compiler.keys import dependencies_key
from gateway.builds import BuildResult
from gateway.step_dependencies import DependencyArchives, image_python_version
from gateway.storage import LocalStorage
from tests.gateway.acceptance.folders import TINY_PACKAGE, write_folder

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("python:3.12-slim", "3.12"),
        ("python:3.9", "3.9"),
        ("docker.io/library/python:3.13-slim-bookworm", "3.13"),
        ("python-cuda:3.10", "3.10"),
        ("python:3", None),
        ("python:slim", None),
        ("python:3.12.4-slim", None),  # says the patch: whose tags pip cannot take
    ],
)
def test_the_python_version_comes_from_the_images_tag(image: str, version: str | None) -> None:
    assert image_python_version(image) == version


def _build(
    tmp_path: Path, files: dict[str, str], *, language: str | None = None
) -> tuple[BuildResult, LocalStorage]:
    code = write_folder(tmp_path / "code", files)
    storage = LocalStorage(tmp_path / "storage")
    archives = DependencyArchives(
        storage=storage,
        default_image=f"python:{HOST}-slim",
        platforms=("manylinux_2_28_x86_64",),
        work_dir=tmp_path,
        timeout_s=120,
    )
    pipeline = Pipeline.model_validate(
        {
            "pipeline_name": "deps",
            "function_path": "src/f.py",
            "function_name": "f",
            "container_config": {
                "requirements_path": "requirements.txt",
                **({"language": language} if language else {}),
            },
        }
    )
    return asyncio.run(archives.build(pipeline, code, {})), storage


def test_a_local_pure_python_package_lands_in_the_archive_under_deps(tmp_path: Path) -> None:
    result, storage = _build(
        tmp_path, {"requirements.txt": "--no-index\n./pkg\n", "src/f.py": "", **TINY_PACKAGE}
    )

    assert result.succeeded, result.logs
    messages = [line["message"] for line in result.logs]
    assert any(f"Python {HOST}" in m and "wheels only" in m for m in messages)
    archive = asyncio.run(storage.read_bytes(dependencies_key("deps")))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
    assert names[0] == "deps"
    assert "deps/tinyhelper/__init__.py" in names
    assert not [n for n in names if n.startswith("deps/bin")]


def test_a_requirement_published_only_as_source_is_refused_clearly(tmp_path: Path) -> None:
    sdist = tmp_path / "code" / "dists" / "onlysource-1.0.tar.gz"
    sdist.parent.mkdir(parents=True)
    with tarfile.open(sdist, "w:gz") as tar:
        setup = textwrap.dedent("[project]\nname = 'onlysource'\nversion = '1.0'\n").encode()
        info = tarfile.TarInfo("onlysource-1.0/pyproject.toml")
        info.size = len(setup)
        tar.addfile(info, io.BytesIO(setup))

    result, storage = _build(
        tmp_path,
        {"requirements.txt": "--no-index\n--find-links dists\nonlysource\n", "src/f.py": ""},
    )

    assert not result.succeeded
    last = result.logs[-1]["message"]
    assert last.startswith("Environment build failed: pip exited with status 1")
    assert f"wheels for Python {HOST}" in last
    assert "published only as source" in last
    assert not asyncio.run(storage.exists(dependencies_key("deps")))


def test_an_image_whose_tag_hides_its_python_cannot_get_packages(tmp_path: Path) -> None:
    result, _ = _build(
        tmp_path, {"requirements.txt": "anything\n", "src/f.py": ""}, language="python:slim"
    )

    assert not result.succeeded
    assert "cannot tell which Python the image 'python:slim' runs" in result.logs[-1]["message"]
