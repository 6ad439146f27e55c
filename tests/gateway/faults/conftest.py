"""Faults under a real ``tender serve``: a PostgreSQL server of the test's own, which it may
stop and start again while the gateway runs (the suite's shared server must not be)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from loopback import free_port


class Postgres(NamedTuple):
    data: Path
    port: int
    user: str
    bin: Path
    as_postgres: bool

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/tender"

    def ctl(self, *args: str) -> None:
        run = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run(
            [*run, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data.parent} -c fsync=off"
        self.ctl("-l", str(self.data.parent / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL's server is not installed (scripts/test installs it)")
    # Not under pytest's tmp dir: as root, the server runs as postgres, who cannot enter it.
    root = Path(tempfile.mkdtemp(prefix="tender-pg-"))
    as_postgres = os.geteuid() == 0  # initdb refuses to run as root
    user = "postgres" if as_postgres else pwd.getpwuid(os.geteuid()).pw_name
    if as_postgres:
        shutil.chown(root, "postgres")
    server = Postgres(root / "data", free_port(), user, Path(found[-1]).parent, as_postgres)
    run = ["runuser", "-u", "postgres", "--"] if as_postgres else []
    subprocess.run(
        [*run, str(server.bin / "initdb"), "-D", str(server.data), "-U", user, "-A", "trust"],
        check=True,
        capture_output=True,
    )
    server.start()
    try:
        createdb = [str(server.bin / "createdb"), "-h", "127.0.0.1", "-p", str(server.port)]
        subprocess.run([*run, *createdb, "-U", user, "tender"], check=True, capture_output=True)
        yield server
    finally:
        subprocess.run(
            [*run, str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
