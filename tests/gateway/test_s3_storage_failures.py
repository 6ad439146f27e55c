"""A wrong or lost bucket: ``tender serve`` names the setting at start and exits non-zero; a
bucket lost while serving answers 503 with a message naming the object, never a 500."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.admin import create_sdk_token
from gateway.app import create_app
from gateway.settings import Settings
from s3_server import S3Server

TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]
ERROR_KEYS = {"message", "name", "request_id", "additional_data"}


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [*TENDER, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"TENDER_S3_BUCKET": "no-such-bucket"}, "TENDER_S3_BUCKET"),
        ({"TENDER_S3_SECRET_ACCESS_KEY": "wrong"}, "TENDER_S3_ACCESS_KEY_ID"),
        ({"TENDER_S3_ENDPOINT_URL": "http://127.0.0.1:9"}, "TENDER_S3_ENDPOINT_URL"),
        ({"TENDER_S3_BUCKET": ""}, "TENDER_S3_BUCKET"),
        ({"TENDER_S3_ACCESS_KEY_ID": ""}, "TENDER_S3_ACCESS_KEY_ID"),
        ({"TENDER_S3_PREFIX": "../up"}, "TENDER_S3_PREFIX"),
    ],
    ids=["no-bucket", "wrong-secret", "unreachable", "no-bucket-set", "half-keys", "bad-prefix"],
)
def test_serve_names_the_wrong_setting_and_exits(
    s3_server: S3Server, tmp_path: Path, change: dict[str, str], setting: str
) -> None:
    env = {**s3_server.settings_env(s3_server.create_bucket()), **change}
    done = _serve(tmp_path, env)
    assert done.returncode != 0
    assert setting in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert env.get("TENDER_S3_SECRET_ACCESS_KEY", "") not in done.stderr or change.get(
        "TENDER_S3_SECRET_ACCESS_KEY"
    )


def test_a_bucket_lost_while_serving_answers_503(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.create_bucket()
    env = s3_server.settings_env(bucket, prefix="p/")
    settings = Settings(
        data_dir=tmp_path / "data",
        **{k.removeprefix("TENDER_").lower(): v for k, v in env.items()},  # type: ignore[arg-type]
    )
    token = create_sdk_token(settings, "test")
    app = create_app(settings)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tender") as client:
                refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
                client.headers["Authorization"] = "Bearer " + refreshed.json()["access_token"]
                listed = await client.get("/api/v1/data-store/list")
                assert listed.status_code == 200, listed.text
                await asyncio.to_thread(s3_server.client().delete_bucket, Bucket=bucket)
                for answer in (
                    await client.get("/api/v1/data-store/list"),
                    await client.post(
                        "/api/v1/data-store/information", json={"path_to_object": "a/b.csv"}
                    ),
                ):
                    assert answer.status_code == 503, answer.text
                    body = answer.json()
                    assert set(body) == ERROR_KEYS
                    assert body["name"] == "StorageUnavailable"
                    assert bucket in body["message"]
                bad = await client.post(
                    "/api/v1/data-store/information", json={"path_to_object": "../x"}
                )
                assert bad.status_code == 400, bad.text

    asyncio.run(main())
