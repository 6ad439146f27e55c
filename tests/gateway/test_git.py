"""Cloning a pipeline's code from git: a real repository on disk, cloned as the gateway does."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.errors import BadRequestError
from gateway.git import clone_repository

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    origin = tmp_path / "origin"
    (origin / "src").mkdir(parents=True)
    (origin / "src" / "f.py").write_text("def f():\n    return {}\n")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    for command in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["commit", "-qm", "one"],
        ["checkout", "-qb", "other"],
    ):
        subprocess.run(["git", *command], cwd=origin, env=env, check=True)
    (origin / "src" / "g.py").write_text("def g():\n    return {}\n")
    subprocess.run(["git", "add", "."], cwd=origin, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "two"], cwd=origin, env=env, check=True)
    return origin


def test_clones_the_branch_without_its_history(repository: Path, tmp_path: Path) -> None:
    target = tmp_path / "code"
    asyncio.run(clone_repository(f"file://{repository}", "main", None, target, allow_local=True))
    assert (target / "src" / "f.py").is_file()
    assert not (target / "src" / "g.py").exists()  # only on the other branch
    assert not (target / ".git").exists()


def test_local_repositories_are_refused_by_default(repository: Path, tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="not a git URL"):
        asyncio.run(clone_repository(f"file://{repository}", "main", None, tmp_path / "code"))
    with pytest.raises(BadRequestError, match="not a git URL"):
        asyncio.run(clone_repository(str(repository), None, None, tmp_path / "code"))


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/pwned", "--upload-pack=x", "ftp://h/r"])
def test_dangerous_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(BadRequestError):
        asyncio.run(clone_repository(url, None, None, tmp_path / "code"))


def test_a_missing_branch_fails_without_showing_the_deploy_key(
    repository: Path, tmp_path: Path
) -> None:
    key = SecretStr("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n-----END")
    with pytest.raises(BadRequestError) as caught:
        asyncio.run(
            clone_repository(
                f"file://{repository}", "nope", key, tmp_path / "code", allow_local=True
            )
        )
    assert caught.value.name == "CloneFailed"
    assert "secret-material" not in caught.value.message
    assert not (tmp_path / "code").exists()
