"""A pipeline created from a git repository (``repository_url``), through the app in-process."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.admin import create_sdk_token
from gateway.app import create_app
from gateway.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    origin = tmp_path / "origin"
    (origin / "src").mkdir(parents=True)
    (origin / "src" / "double.py").write_text("def double(x):\n    return {'y': 2 * x}\n")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", *command], cwd=origin, env=env, check=True)
    return origin


def _serve(tmp_path: Path, scenario: Scenario) -> None:
    """Run ``scenario`` against the app (lifespan included) with an authenticated client."""
    settings = Settings(data_dir=tmp_path / "data", allow_local_repositories=True, long_poll_s=5)
    token = create_sdk_token(settings, "test")
    app = create_app(settings)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tender") as client:
                refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
                client.headers["Authorization"] = "Bearer " + refreshed.json()["access_token"]
                await scenario(client)

    asyncio.run(main())


def _definition(name: str, repository: Path, branch: str) -> dict[str, object]:
    return {
        "pipeline_name": name,
        "function_path": "src/double.py",
        "function_name": "double",
        "inputs": [{"name": "x", "data_type": "number"}],
        "outputs": [{"name": "y", "data_type": "number"}],
        "container_config": {"repository_url": f"file://{repository}", "repository_branch": branch},
    }


def test_create_from_git_and_run(tmp_path: Path, repository: Path) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        created = await client.post("/api/v1/pipelines", json=_definition("g", repository, "main"))
        assert created.status_code == 200, created.text
        assert created.json()["creation_info"]["origin"] == "git_repository"
        ready = await client.get("/api/v1/pipelines/g", params={"wait_for_completion": "true"})
        assert ready.json()["creation_info"]["status"] == "ready"
        run = await client.post("/api/v1/pipelines/g/run", data={"json_inputs": '{"x": 21}'})
        execution_id = run.json()["execution_id"]
        outputs = await client.get(
            f"/api/v1/executions/{execution_id}/outputs",
            params={"wait_for_completion": "true"},
        )
        assert outputs.status_code == 200, outputs.text
        assert outputs.json()["outputs"][0]["value"] == 42
        execution = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        assert execution["steps"][0]["repository_url"] == f"file://{repository}"
        assert execution["steps"][0]["origin"] == "git_repository"

    _serve(tmp_path, scenario)


def test_a_missing_branch_creates_nothing(tmp_path: Path, repository: Path) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        answer = await client.post("/api/v1/pipelines", json=_definition("g", repository, "nope"))
        assert answer.status_code == 400
        assert answer.json()["name"] == "CloneFailed"
        assert (await client.get("/api/v1/pipelines")).json() == []

    _serve(tmp_path, scenario)
