"""Sampling what tender's executions use on this machine (embedded engine).

Every ``resource_sample_s`` the gateway measures its descendant processes (step processes, and
the pip builds of pipeline environments): their CPU time over the interval as a percent of all
cores, and their resident memory as a percent of the machine's. CPU time includes processes
that ended during the interval (the kernel adds a reaped child's time to its parent's
``children`` times), so steps shorter than the interval still count. A process's network
traffic is not kept by the kernel outside network namespaces, so the network figures are the
machine's; the disk figure is how full the file system of the data dir is, where executions
write. Samples go to the store (``resource_samples``), which ``GET /resource-metrics`` reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from gateway.store.db import Database
from gateway.store.resources import ResourceSample, ResourceSampleRepository

__all__ = ["ResourceSampler", "sample_resources"]

_log = logging.getLogger("tender.resources")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)
_PRUNE_EVERY = 100  # samples


@dataclass(frozen=True)
class _Counters:
    at: float  # monotonic seconds
    cpu_seconds: float
    received: int
    sent: int


class ResourceSampler:
    """Each ``sample()`` measures the interval since the previous one (the first primes)."""

    def __init__(self, data_dir: Path, *, worker: str | None = None) -> None:
        self._data_dir = data_dir
        self._worker = worker or socket.gethostname()
        self._me = psutil.Process()
        self._previous: _Counters | None = None

    def _cpu_seconds_and_rss(self) -> tuple[float, int]:
        reaped = os.times()
        cpu = reaped.children_user + reaped.children_system
        rss = 0
        for process in self._me.children(recursive=True):
            try:
                times = process.cpu_times()
                rss += process.memory_info().rss
            except _GONE:
                continue
            cpu += times.user + times.system + times.children_user + times.children_system
        return cpu, rss

    def sample(self) -> ResourceSample | None:
        cpu_seconds, rss = self._cpu_seconds_and_rss()
        network = psutil.net_io_counters()
        now = _Counters(time.monotonic(), cpu_seconds, network.bytes_recv, network.bytes_sent)
        previous, self._previous = self._previous, now
        if previous is None:
            return None
        elapsed = max(now.at - previous.at, 1e-6)
        cores = psutil.cpu_count() or 1
        used = max(now.cpu_seconds - previous.cpu_seconds, 0.0)
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self._data_dir))
        return ResourceSample(
            worker=self._worker,
            taken_at=datetime.now(UTC),
            cpu_usage=min(100.0 * used / (elapsed * cores), 100.0),
            ram_usage=100.0 * rss / memory.total,
            disk_usage=disk.percent,
            network_input=float(max(now.received - previous.received, 0)),
            network_output=float(max(now.sent - previous.sent, 0)),
            total_ram=memory.total,
            total_disk=disk.total,
        )


async def sample_resources(
    db: Database, data_dir: Path, *, interval_s: float, retention: timedelta
) -> None:
    """Sample until cancelled; a failed sample is logged and the next one taken as usual."""
    sampler = ResourceSampler(data_dir)
    samples = ResourceSampleRepository(db)
    count = 0
    while True:
        try:
            sample = await asyncio.to_thread(sampler.sample)
            if sample is not None:
                await asyncio.to_thread(samples.add, sample)
                count += 1
                if count % _PRUNE_EVERY == 1:
                    await asyncio.to_thread(samples.prune, sample.taken_at - retention)
        except Exception:
            _log.exception("sampling resource metrics failed")
        await asyncio.sleep(interval_s)
