"""Cloning a pipeline's code from a git repository (``repository_url``, ``repository_branch``).

The deploy key, if any, is written to a private temporary file for the clone and removed after;
it never reaches a log line or an error message.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path

from pydantic import SecretStr

from gateway.errors import BadRequestError

__all__ = ["clone_repository"]

_REMOTE = re.compile(r"^(https?|ssh|git)://[^\s]+$|^[\w.-]+@[\w.-]+:[^\s]+$")
_BRANCH = re.compile(r"^[\w][\w./-]*$")


async def clone_repository(
    url: str,
    branch: str | None,
    deploy_key: SecretStr | None,
    destination: Path,
    *,
    allow_local: bool = False,
    timeout_s: float = 300.0,
) -> None:
    _check_url(url, allow_local)
    if branch is not None and (not _BRANCH.fullmatch(branch) or ".." in branch):
        raise BadRequestError(f"repository_branch {branch!r} is not a valid branch name")
    command = ["git", "clone", "--quiet", "--depth", "1", "--no-tags"]
    if branch:
        command += ["--branch", branch]
    env = {"PATH": os.environ.get("PATH", ""), "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent"}
    with tempfile.TemporaryDirectory(prefix="git-") as private:
        if deploy_key is not None:
            key = Path(private) / "key"
            key.write_text(deploy_key.get_secret_value().strip() + "\n")
            key.chmod(0o600)
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {shlex.quote(str(key))} -o IdentitiesOnly=yes "
                "-o StrictHostKeyChecking=accept-new -o BatchMode=yes"
            )
        await _run([*command, "--", url, str(destination)], env, timeout_s)
    await asyncio.to_thread(shutil.rmtree, destination / ".git", True)


def _check_url(url: str, allow_local: bool) -> None:
    if _REMOTE.fullmatch(url) or (
        allow_local and (url.startswith("file://") or url.startswith("/"))
    ):
        return
    raise BadRequestError(
        f"repository_url {url!r} is not a git URL this gateway clones "
        "(https://, ssh://, git:// or user@host:path)",
        name="InvalidRepository",
    )


async def _run(command: list[str], env: dict[str, str], timeout_s: float) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BadRequestError(
            f"cloning the repository took more than {timeout_s:.0f} s", name="CloneFailed"
        ) from None
    if process.returncode != 0:
        reason = stderr.decode(errors="replace").strip().splitlines()
        raise BadRequestError(
            "cloning the repository failed: " + (reason[-1] if reason else "git failed"),
            name="CloneFailed",
        )
