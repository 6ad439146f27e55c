"""Gateway benchmark: the SDK's round trips against a live ``tender serve``, beside their floors.

Run: ``python bench/gateway_bench.py [--runs N]``. In one run it measures, as medians:
- ``run_pipeline`` of a no-op pipeline through the unmodified craft-ai-sdk client, beside the
  embedded engine's floor (the interpreter running the step runner on a no-op function);
- ``GET /api/v1/pipelines/{name}/executions`` with 10,000 executions in the store, beside the
  bare SQL query of the same rows plus their JSON encoding (sqlite3 + orjson, no gateway).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import requests

sys.path.insert(0, str(Path(__file__).parent))

from measure import median_ms
from noop_pipeline import floor_once, write_code
from serving import access_token, served

from gateway.dates import format_date
from gateway.store import Database, ExecutionRecord, ExecutionRepository

ROWS = 10_000


def fill_executions(database: Path, pipeline: str, rows: int) -> None:
    db = Database(f"sqlite:///{database}")
    repository = ExecutionRepository(db)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(rows):
        created = start + timedelta(seconds=n)
        step = {
            "name": pipeline,
            "status": "Succeeded",
            "start_date": format_date(created),
            "end_date": format_date(created + timedelta(seconds=1)),
            "commit_id": None,
            "repository_url": None,
            "repository_branch": None,
            "requirements_path": None,
            "origin": "local",
        }
        repository.insert(
            ExecutionRecord(
                id=f"{pipeline}-{n:05d}",
                pipeline_name=pipeline,
                deployment_name=None,
                trigger="run",
                created_by=uuid.uuid4().hex,
                created_at=created,
                status="Succeeded",
                end_date=created + timedelta(seconds=1),
                steps=[step],
                inputs=[],
                outputs=[],
            )
        )
    db.dispose()


def bare_list(database: Path, pipeline: str) -> bytes:
    """The floor: the same rows straight from SQLite, as dicts, encoded with orjson."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT id, status, created_at, created_by, end_date, pipeline_name, "
            "deployment_name, steps FROM executions WHERE pipeline_name = ? "
            "ORDER BY created_at DESC",
            (pipeline,),
        ).fetchall()
    items = [
        {
            "execution_id": r[0],
            "status": r[1],
            "created_at": r[2],
            "created_by": r[3],
            "end_date": r[4],
            "pipeline_name": r[5],
            "deployment_name": r[6],
            "steps": orjson.loads(r[7]),
        }
        for r in rows
    ]
    return orjson.dumps(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    arguments = parser.parse_args()
    os.environ["SDK_VERBOSE_LOG"] = "false"
    from craft_ai_sdk import INPUT_OUTPUT_TYPES, CraftAiSdk, Output

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        code = write_code(root / "code")
        (root / "floor").mkdir()
        floor = median_ms(lambda: floor_once(code, root / "floor"), arguments.runs)
        with served(root / "data") as (url, token, _):
            sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
            for name in ("noop", "listed"):
                sdk.create_pipeline(
                    name,
                    function_path="src/noop.py",
                    function_name="noop",
                    container_config={"local_folder": str(code)},
                    outputs=[Output("y", INPUT_OUTPUT_TYPES.NUMBER)],
                )
            run = median_ms(lambda: sdk.run_pipeline("noop"), arguments.runs)
            fill_executions(root / "data" / "tender.db", "listed", ROWS)
            session = requests.Session()
            token_header = {"Authorization": "Bearer " + access_token(url, token)}
            listing_url = f"{url}/api/v1/pipelines/listed/executions"

            def listing() -> None:
                answer = session.get(listing_url, headers=token_header, timeout=60)
                assert answer.content.count(b'"execution_id"') == ROWS

            listed = median_ms(listing, arguments.runs)
            bare = median_ms(
                lambda: bare_list(root / "data" / "tender.db", "listed"), arguments.runs
            )
    print(
        f"Run: {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, medians of {arguments.runs}."
    )
    print()
    print("| what | tender | floor | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| `run_pipeline`, no-op, through craft-ai-sdk | {run:.1f} ms | {floor:.1f} ms "
        f"| {run / floor:.2f}x |"
    )
    print(
        f"| list {ROWS:,} executions (`GET .../executions`, over HTTP) "
        f"| {listed:.1f} ms | {bare:.1f} ms | {listed / bare:.2f}x |"
    )


if __name__ == "__main__":
    main()
