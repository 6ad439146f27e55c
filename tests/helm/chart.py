"""Running helm on the chart (helm/tender) from the tests: the binary, rendering, linting.

The binary comes from tools/helm/build (helm from its Go module, cached outside the
repository); $HELM names a prebuilt one, as scripts/test sets it. Without Go the tests that
need it are skipped, unless TENDER_REQUIRE_HELM is set: then they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = ["CHART", "Helm", "find_helm", "values_files"]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tender"


def values_files() -> list[Path]:
    """The chart's values matrix: each file in helm/tender/ci is linted and rendered."""
    return sorted((CHART / "ci").glob("*.yaml"))


@dataclass(frozen=True)
class Helm:
    binary: Path
    kubeconfig: Path | None = None

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        # Helm keeps its caches and settings per user: keep the tests' out of the user's.
        home = Path(os.environ.get("TMPDIR", "/tmp")) / f"tender-helm-{os.getuid()}"
        env.update(
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
        )
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        done = subprocess.run(
            [str(self.binary), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(f"helm {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def template(
        self,
        *values: Path,
        sets: Sequence[str] = (),
        release: str = "tender",
        namespace: str = "argo",
        extra: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The chart's objects as ``helm template`` renders them (tests included)."""
        args: list[str | Path] = ["template", release, CHART, "--namespace", namespace, *extra]
        for file in values:
            args += ["--values", file]
        for item in sets:
            args += ["--set", item]
        text = self.run(*args).stdout
        return [d for d in yaml.safe_load_all(text) if d]


def find_helm() -> Helm:
    if prebuilt := os.environ.get("HELM"):
        return Helm(Path(prebuilt))
    if shutil.which("go") is None:
        reason = "`go` is not on PATH: cannot build tools/helm/build"
        if os.environ.get("TENDER_REQUIRE_HELM"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    # A cold build downloads helm's modules and compiles them: minutes on 2 cores.
    built = subprocess.run(
        [REPO / "tools" / "helm" / "build"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"tools/helm/build failed:\n{built.stderr[-4000:]}", pytrace=False)
    return Helm(Path(built.stdout.strip().splitlines()[-1]))
