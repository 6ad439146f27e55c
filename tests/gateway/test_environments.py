"""Real virtualenvs and real pip, offline: requirements are local packages and ``--no-index``."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gateway.environments import (
    BuildResult,
    build_environment,
    environment_python,
    remove_environment,
)

# A PEP 517 backend kept in the project itself, so that pip builds it with nothing to download.
BACKEND = """
import base64, hashlib, os, time, zipfile

NAME, VERSION = "tinypkg", "{version}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    {before_build}
    info = f"{{NAME}}-{{VERSION}}.dist-info"
    metadata = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
    wheel = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files = {{
        f"{{NAME}}/__init__.py": b"VALUE = {value!r}\\n",
        f"{{info}}/METADATA": metadata.encode(),
        f"{{info}}/WHEEL": wheel.encode(),
    }}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{info}}/RECORD,,")
    name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
        wheel.writestr(f"{{info}}/RECORD", "\\n".join(record) + "\\n")
    return name
"""

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def local_package(
    folder: Path, *, value: str = "v1", version: str = "0.1", before_build: str = "pass"
) -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    backend = BACKEND.format(version=version, value=value, before_build=before_build)
    (folder / "backend.py").write_text(textwrap.dedent(backend))
    return folder


def build(code: Path, requirements: str | None, envs: Path, **options: Any) -> BuildResult:
    return asyncio.run(build_environment("p", code, requirements, envs, **options))


def messages(result: BuildResult) -> str:
    return "\n".join(entry["message"] for entry in result.logs)


def run_in(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    return folder


@pytest.fixture
def envs(tmp_path: Path) -> Path:
    return tmp_path / "envs"


def env_folders(envs: Path) -> list[str]:
    return sorted(p.name for p in envs.iterdir()) if envs.exists() else []


def test_without_requirements_the_pipeline_still_gets_its_own_interpreter(
    code: Path, envs: Path
) -> None:
    result = build(code, None, envs)

    assert result.succeeded, messages(result)
    assert result.python == envs / "p" / "bin" / "python"
    assert result.python == environment_python("p", envs)
    probe = run_in(result.python, "import sys; print(sys.prefix); import pip")
    assert probe.stdout.strip() == str(envs / "p")
    assert "No module named 'pip'" in probe.stderr  # created --without-pip
    assert "Environment ready" in messages(result)
    link, folder = env_folders(envs)[::-1]
    assert link == "p"
    assert re.fullmatch(r"\.p-[0-9a-f]{8}", folder)
    assert os.readlink(envs / "p") == folder


def test_logs_are_timestamped_in_utc(code: Path, envs: Path) -> None:
    result = build(code, None, envs)
    assert result.logs
    for entry in result.logs:
        assert set(entry) == {"timestamp", "message"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])


def test_installs_a_local_package_offline(code: Path, envs: Path) -> None:
    local_package(code / "tinypkg", value="installed")
    (code / "requirements.txt").write_text("--no-index\n./tinypkg\n")

    result = build(code, "requirements.txt", envs)

    assert result.succeeded, messages(result)
    assert result.python is not None
    probe = run_in(result.python, "import tinypkg; print(tinypkg.VALUE)")
    assert probe.stdout.strip() == "installed", probe.stderr
    assert "Successfully installed tinypkg-0.1" in messages(result)
    assert "  ./tinypkg" in messages(result)
    # Isolated from the gateway's own packages, and the expanded copy is gone.
    assert run_in(result.python, "import fastapi").returncode != 0
    assert sorted(p.name for p in code.iterdir()) == ["requirements.txt", "tinypkg"]


def test_requirements_in_a_subfolder_resolve_paths_from_the_code_folder(
    code: Path, envs: Path
) -> None:
    local_package(code / "pkgs" / "tinypkg")
    (code / "config").mkdir()
    (code / "config" / "base.txt").write_text("./pkgs/tinypkg\n")
    (code / "config" / "requirements.txt").write_text("--no-index\n-r base.txt\n")

    result = build(code, "config/requirements.txt", envs)

    assert result.succeeded, messages(result)
    assert result.python is not None
    assert run_in(result.python, "import tinypkg").returncode == 0


def test_a_bad_requirement_fails_with_pips_message(code: Path, envs: Path) -> None:
    (code / "requirements.txt").write_text("--no-index\nno-such-package-tender==1.0\n")

    result = build(code, "requirements.txt", envs)

    assert not result.succeeded
    assert result.python is None
    text = messages(result)
    assert "No matching distribution found for no-such-package-tender==1.0" in text
    assert "pip exited with status 1" in text
    assert env_folders(envs) == []


def test_variables_are_expanded_but_never_logged(code: Path, envs: Path) -> None:
    secret = "pkg-s3cr3t-t0ken"
    local_package(code / secret)
    (code / "requirements.txt").write_text("--no-index\n./${PKG_DIR}\n")

    result = build(code, "requirements.txt", envs, env_vars={"PKG_DIR": secret, "OTHER": "x"})

    assert result.succeeded, messages(result)
    text = messages(result)
    assert "s3cr3t" not in text
    assert "  ./${PKG_DIR}" in text
    assert "Processing ./${PKG_DIR}" in text


def test_a_failing_build_does_not_log_the_value_either(code: Path, envs: Path) -> None:
    (code / "requirements.txt").write_text("--no-index\nprivate-${TOKEN}==1.0\n")

    result = build(code, "requirements.txt", envs, env_vars={"TOKEN": "hunter2secret"})

    assert not result.succeeded
    text = messages(result)
    assert "hunter2secret" not in text
    assert "private-${TOKEN}==1.0" in text


def test_an_undefined_variable_fails_the_build(code: Path, envs: Path) -> None:
    (code / "requirements.txt").write_text("--no-index\n\n./${MISSING}\n")

    result = build(code, "requirements.txt", envs)

    assert not result.succeeded
    assert "line 3 of the requirements uses ${MISSING}, which is not a defined" in messages(result)
    assert env_folders(envs) == []


@pytest.mark.parametrize(
    ("requirements", "problem"),
    [
        ("missing.txt", "'missing.txt' is not in the folder"),
        ("../outside.txt", "'../outside.txt' must be a relative path inside the folder"),
        ("/etc/hostname", "'/etc/hostname' must be a relative path inside the folder"),
        ("sub\\r.txt", "must be a relative path inside the folder"),
        ("link.txt", "'link.txt' escapes the folder"),
    ],
)
def test_a_bad_requirements_path_fails_the_build(
    code: Path, envs: Path, requirements: str, problem: str
) -> None:
    (code.parent / "outside.txt").write_text("requests\n")
    (code / "link.txt").symlink_to(code.parent / "outside.txt")

    result = build(code, requirements, envs)

    assert not result.succeeded
    assert problem in messages(result)
    assert env_folders(envs) == []


def test_a_rebuild_replaces_the_environment(code: Path, envs: Path) -> None:
    local_package(code / "v1", value="one")
    local_package(code / "v2", value="two", version="0.2")
    (code / "r1.txt").write_text("--no-index\n./v1\n")
    (code / "r2.txt").write_text("--no-index\n./v2\n")
    (code / "bad.txt").write_text("--no-index\nno-such-package-tender\n")
    check = "import tinypkg; print(tinypkg.VALUE)"

    first = build(code, "r1.txt", envs)
    second = build(code, "r2.txt", envs)
    failed = build(code, "bad.txt", envs)

    assert first.succeeded
    assert second.succeeded
    assert not failed.succeeded
    assert second.python == first.python == environment_python("p", envs)
    assert run_in(environment_python("p", envs), check).stdout.strip() == "two"
    assert len(env_folders(envs)) == 2  # the link and the second build's folder


def test_a_timeout_fails_the_build_and_stops_what_pip_started(
    code: Path, envs: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "backend.pid"
    hang = f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    local_package(code / "slow", before_build=hang)
    (code / "requirements.txt").write_text("--no-index\n./slow\n")

    result = build(code, "requirements.txt", envs, timeout_s=5)

    assert not result.succeeded
    assert "Environment build failed: timed out" in messages(result)
    assert env_folders(envs) == []
    if pid_file.exists():  # the backend had started: it must be gone
        assert not is_running(int(pid_file.read_text()))


def is_running(pid: int) -> bool:
    """Killed processes may stay zombies here: the container's init does not reap them."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return re.search(r"^State:\s+Z", status, re.MULTILINE) is None


def test_remove_environment(code: Path, envs: Path) -> None:
    build(code, None, envs)
    asyncio.run(remove_environment("p", envs))
    assert env_folders(envs) == []
    asyncio.run(remove_environment("p", envs))  # nothing left to remove


@pytest.mark.parametrize("name", ["", ".hidden", "a/b"])
def test_refuses_names_that_are_not_one_folder(code: Path, envs: Path, name: str) -> None:
    with pytest.raises(ValueError, match="cannot name an environment folder"):
        asyncio.run(build_environment(name, code, None, envs))


def test_uses_the_given_interpreter(code: Path, envs: Path) -> None:
    result = build(code, None, envs, python=sys.executable)
    assert result.python is not None
    probe = run_in(result.python, "import sys; print(sys.version_info[:2])")
    assert probe.stdout.strip() == str(sys.version_info[:2])
