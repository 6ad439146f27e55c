"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from argo_schema import schema_errors

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

    Skipped without Go, unless TENDER_REQUIRE_ARGOLINT is set, as .ci/run does.
    """
    if binary := os.environ.get("ARGOLINT"):
        return Path(binary)
    if shutil.which("go") is None and not os.environ.get("TENDER_REQUIRE_ARGOLINT"):
        pytest.skip("Go is not installed, so tools/argolint cannot be built")
    built = subprocess.run(
        [REPO / "tools" / "argolint" / "build"], capture_output=True, text=True, check=True
    )
    return Path(built.stdout.strip())
