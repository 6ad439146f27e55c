"""A small HTTP load generator that is not the bottleneck: several processes, each with a few
threads, each thread on its own keep-alive ``http.client`` connection (no redirects followed).

``run_load(url, headers, body, clients=16, seconds=5)`` returns the answers per second and their
status codes; ``total=N`` sends exactly N requests instead of running for a time. The clients are
spread over ``processes`` processes so that one GIL does not cap them; they run on the same
machine as the server, as every client in these benchmarks does.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BARE_APP", "LoadResult", "run_load"]

# The floor of the endpoint rows: a FastAPI endpoint that does nothing, served by uvicorn.
BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.post("/endpoints/{path}")
async def call(path: str) -> dict[str, str]:
    return {"execution_id": "none"}
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[int, int]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def run_load(
    url: str,
    headers: dict[str, str],
    body: object,
    *,
    clients: int = 16,
    seconds: float = 5.0,
    total: int | None = None,
    processes: int | None = None,
) -> LoadResult:
    processes = processes or min(clients, max(2, os.cpu_count() or 1) * 2)
    payload = json.dumps(body).encode()
    sent = multiprocessing.Value("i", 0)
    start = multiprocessing.Event()
    results: multiprocessing.Queue[tuple[int, dict[int, int], float]] = multiprocessing.Queue()
    shares = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
    workers = [
        multiprocessing.Process(
            target=_worker,
            args=(url, headers, payload, share, seconds, total, sent, start, results),
        )
        for share in shares
        if share
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # every worker connected before the clock starts
    began = time.perf_counter()
    start.set()
    counts: Counter[int] = Counter()
    finished = 0.0
    requests = 0
    for _ in workers:
        done, statuses, ended = results.get()
        requests += done
        counts.update(statuses)
        finished = max(finished, ended)
    for worker in workers:
        worker.join()
    return LoadResult(requests, finished - began, dict(counts))


def _worker(  # noqa: PLR0917 - a multiprocessing target takes its arguments by position
    url: str,
    headers: dict[str, str],
    payload: bytes,
    threads: int,
    seconds: float,
    total: int | None,
    sent: multiprocessing.sharedctypes.Synchronized[int],
    start: multiprocessing.synchronize.Event,
    results: multiprocessing.Queue[tuple[int, dict[int, int], float]],
) -> None:
    parts = urlsplit(url)
    counts: Counter[int] = Counter()
    lock = threading.Lock()
    done = [0]
    start.wait()
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        local: Counter[int] = Counter()
        while True:
            if total is not None:
                with sent.get_lock():
                    if sent.value >= total:
                        break
                    sent.value += 1
            elif time.perf_counter() >= stop_at:
                break
            connection.request(
                "POST",
                parts.path,
                body=payload,
                headers={"Content-Type": "application/json", **headers},
            )
            answer = connection.getresponse()
            answer.read()
            local[answer.status] += 1
        connection.close()
        with lock:
            counts.update(local)
            done[0] += sum(local.values())

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((done[0], dict(counts), time.perf_counter()))
