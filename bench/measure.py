"""How the benchmarks time things: samples of repeated calls after a warm-up, their median and
their 99th percentile, in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["median_ms", "p99", "samples_ms"]


def samples_ms(function: Callable[[], object], times: int, *, warm_up: int = 1) -> list[float]:
    """How long each of ``times`` calls took, after ``warm_up`` calls left out."""
    for _ in range(warm_up):
        function()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def median_ms(function: Callable[[], object], times: int) -> float:
    return statistics.median(samples_ms(function, times))


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]
