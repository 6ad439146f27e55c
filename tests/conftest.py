"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from argo_cluster import argo_cluster
from argo_gateway import argo_gateway
from argo_schema import schema_errors
from s3_server import s3_server

__all__ = [
    "argo_cluster",
    "argo_gateway",
    "s3_server",
]  # the session fixtures, shared by every package

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def assert_valid_manifest() -> Callable[[dict[str, Any]], None]:
    """Check a manifest against Argo's strict JSON schema (built once per session)."""

    def check(manifest: dict[str, Any]) -> None:
        errors = schema_errors(manifest)
        assert not errors, "\n".join(errors)

    return check


@pytest.fixture(scope="session")
def argolint() -> Path:
    """Argo's own offline validator (tools/argolint), built once and reused.

    $ARGOLINT names a prebuilt binary (.ci/run builds it first). Without Go the tests that need
    it are skipped, unless TENDER_REQUIRE_ARGOLINT is set, as .ci/run does: then they fail.
    """
    if prebuilt := os.environ.get("ARGOLINT"):
        return Path(prebuilt)
    if shutil.which("go") is None:
        reason = "`go` is not on PATH: cannot build tools/argolint (Argo's offline linter)"
        if os.environ.get("TENDER_REQUIRE_ARGOLINT"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    # The first build downloads Argo's Go modules and compiles them: minutes on 2 cores.
    built = subprocess.run(
        [REPO / "tools" / "argolint" / "build"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"tools/argolint/build failed:\n{built.stderr[-4000:]}", pytrace=False)
    return Path(built.stdout.strip().splitlines()[-1])
