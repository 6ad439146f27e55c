"""Load: N endpoint calls at once on loopback, then every execution recorded and ended.

Run: ``python bench/load_bench.py [--calls N]`` (default 500). Against a live ``tender serve``
(SQLite, the embedded engine), all calls of a no-op endpoint are sent at once (one connection
each, ``httpx``), answered ``303`` without waiting for results; then the executions are listed
until every one has ended. It prints the calls, how they were answered, the executions
recorded and lost, the time to answer every call and the time until every execution ended,
beside the floor: the same calls to a bare FastAPI endpoint that does nothing.

``tests/gateway/acceptance/test_load.py`` runs ``load`` and asserts what it counts (nothing
lost, no 5xx), never its times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from load import BARE_APP
from noop_pipeline import write_code
from serving import bare_uvicorn, create_noop, served


@dataclass(frozen=True)
class LoadResult:
    calls: int
    statuses: Counter[int]  # answers by status; 0 for a call that got no answer
    recorded: int  # executions listed for the pipeline once every one ended
    lost: int  # calls answered 303 whose execution is not listed, or did not end Succeeded
    answered_s: float  # from the first call sent to the last answer
    ended_s: float  # from the first call sent to every execution ended

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


async def _call_all(url: str, headers: dict[str, str], calls: int) -> list[tuple[int, str]]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=600) as client:

        async def one() -> tuple[int, str]:
            try:
                answer = await client.post(url, json={"x": 1}, headers=headers)
            except httpx.HTTPError:
                return 0, ""
            if answer.status_code != 303:
                return answer.status_code, ""
            execution_id: str = answer.json()["execution_id"]
            return 303, execution_id

        return await asyncio.gather(*(one() for _ in range(calls)))


def load(
    base_url: str,
    endpoint: str,
    endpoint_token: str,
    executions: Any,
    calls: int,
    *,
    timeout_s: float = 1200,
) -> LoadResult:
    """Call ``/endpoints/{endpoint}`` ``calls`` times at once; ``executions()`` lists the
    pipeline's executions (the SDK's ``list_pipeline_executions``)."""
    headers = {"Authorization": f"EndpointToken {endpoint_token}"}
    started = time.perf_counter()
    answers = asyncio.run(_call_all(f"{base_url}/endpoints/{endpoint}", headers, calls))
    answered = time.perf_counter() - started
    accepted = {execution_id for status, execution_id in answers if status == 303}
    deadline = time.monotonic() + timeout_s
    listed: dict[str, str] = {}
    while time.monotonic() < deadline:
        listed = {e["execution_id"]: e["status"] for e in executions()}
        if accepted <= set(listed) and all(
            listed[i] not in ("Pending", "Running") for i in accepted
        ):
            break
        time.sleep(0.5)
    ended = time.perf_counter() - started
    lost = sum(1 for i in accepted if listed.get(i) != "Succeeded")
    return LoadResult(
        calls=calls,
        statuses=Counter(status for status, _ in answers),
        recorded=len(listed),
        lost=lost,
        answered_s=answered,
        ended_s=ended,
    )


def _bare_answered_s(folder: Path, calls: int) -> float:
    with bare_uvicorn(folder, BARE_APP) as url:
        started = time.perf_counter()
        asyncio.run(_call_all(url, {}, calls))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    arguments = parser.parse_args()
    os.environ["SDK_VERBOSE_LOG"] = "false"
    from craft_ai_sdk import CraftAiSdk

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        code = write_code(root / "code")
        bare = _bare_answered_s(root, arguments.calls)
        with served(root / "data") as (url, token, _):
            sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
            endpoint_token = create_noop(sdk, code)
            result = load(
                url,
                "noop",
                endpoint_token,
                lambda: sdk.list_pipeline_executions("noop"),
                arguments.calls,
            )
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(result.statuses.items()))
    print(f"Run: {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores.")
    print()
    print("| what | tender | floor (bare FastAPI) |")
    print("|---|---:|---:|")
    print(f"| calls sent at once | {result.calls} | {arguments.calls} |")
    print(f"| answers | {statuses} | - |")
    print(f"| executions recorded | {result.recorded} | - |")
    print(f"| executions lost | {result.lost} | - |")
    print(f"| 5xx answers | {result.server_errors} | - |")
    print(f"| every call answered | {result.answered_s:.1f} s | {bare:.1f} s |")
    print(f"| every execution ended | {result.ended_s:.1f} s | - |")


if __name__ == "__main__":
    main()
