"""Fixtures of the chart's tests: the helm binary, built once per run."""

from __future__ import annotations

import pytest

from tests.helm.chart import Helm, find_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    return find_helm()
