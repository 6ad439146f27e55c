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
# The first test on the Argo cluster starts it, after waiting for another run's to stop
# (tools/cluster: TENDER_CLUSTER_WAIT_S, 45 minutes by default), then up to ten minutes to start.
_CLUSTER_SETUP_S = float(os.environ.get("TENDER_CLUSTER_WAIT_S", "2700")) + 600 + 300


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The test that starts the session's cluster gets the time to: the per-test timeout
    (pyproject's 300 s) would otherwise end its wait for the machine's cluster lock."""
    for item in items:
        if item.get_closest_marker("argo") and not item.get_closest_marker("skip"):
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(_CLUSTER_SETUP_S))
            return


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
