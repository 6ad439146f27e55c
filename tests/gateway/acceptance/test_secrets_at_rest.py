"""Secrets at rest: the store's file and the data dir are the owner's alone, and an SDK token
that is deleted or rotated takes the access tokens issued for it along."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess

import pytest
import requests

from tests.gateway.acceptance.conftest import TENDER, Gateway
from tests.gateway.acceptance.test_bad_input import assert_error


def _tender(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENDER_")}
    if gateway.database == "postgres":
        env["TENDER_DATABASE_URL"] = gateway.database_url
    return subprocess.run(
        [*TENDER, *args, "--data-dir", str(gateway.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _mode(path: os.PathLike[str]) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def test_the_data_dir_and_the_database_are_owner_only(gateway: Gateway) -> None:
    assert _mode(gateway.data_dir) == "0o700"
    if gateway.database == "sqlite":
        database = gateway.data_dir / "tender.db"
        assert _mode(database) == "0o600"
        for companion in ("tender.db-wal", "tender.db-shm"):
            if (gateway.data_dir / companion).exists():
                assert _mode(gateway.data_dir / companion) == "0o600", companion


def _refresh(gateway: Gateway, sdk_token: str) -> requests.Response:
    return requests.post(
        f"{gateway.api}/auth/refresh", json={"refresh_token": sdk_token}, timeout=30
    )


def _me(gateway: Gateway, access_token: str) -> requests.Response:
    return requests.get(
        f"{gateway.api}/users/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )


def test_rotating_then_deleting_an_sdk_token_revokes_its_access_tokens(gateway: Gateway) -> None:
    name = f"revoked-{secrets.token_hex(4)}"
    created = _tender(gateway, "token", "create", "--name", name)
    assert created.returncode == 0, created.stderr
    first = created.stdout.strip()
    first_access = _refresh(gateway, first).json()["access_token"]
    user = _me(gateway, first_access).json()["id"]
    listed = _tender(gateway, "token", "list")
    assert f"{name}\t{user}\t" in listed.stdout
    assert first not in listed.stdout

    rotated = _tender(gateway, "token", "rotate", name)
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.strip()
    assert second != first
    body = assert_error(_me(gateway, first_access), 401, "rotated")
    assert body["name"] == "TokenRevoked"
    assert_error(_refresh(gateway, first), 401)
    second_access = _refresh(gateway, second).json()["access_token"]
    assert _me(gateway, second_access).json()["id"] == user  # the same user

    deleted = _tender(gateway, "token", "delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert_error(_me(gateway, second_access), 401, "deleted")
    assert_error(_refresh(gateway, second), 401)
    assert name not in _tender(gateway, "token", "list").stdout


@pytest.mark.parametrize("command", ["delete", "rotate"])
def test_a_token_name_nobody_has_is_an_error(gateway: Gateway, command: str) -> None:
    done = _tender(gateway, "token", command, f"nobody-{secrets.token_hex(4)}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no SDK token is named" in done.stderr
