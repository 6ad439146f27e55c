"""The data dir and the embedded store's file, made owner-only before anything is put in them.

The SQLite file holds the access tokens' signing key and the environment variables' values:
it is created mode 0600 before SQLite opens it (SQLite would use the umask, 0644 at most
places), and SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file. The
data dir tender creates is mode 0700, which covers the storage, the work folders and the
pipelines' environments inside it. A data dir that already exists is left as its owner made
it, with a warning if others may read it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.settings import Settings

__all__ = ["prepare_data_dir"]

_log = logging.getLogger("tender.gateway")
_OWNER_ONLY_DIR = 0o700
_OWNER_ONLY_FILE = 0o600


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir and the SQLite file (if the store is one) owner-only."""
    data_dir = settings.data_dir
    if data_dir.exists():
        if stat.S_IMODE(data_dir.stat().st_mode) & 0o077:
            _log.warning(
                "the data dir %s may be read by other users: it holds pipelines' code and "
                "data (chmod 700 it)",
                data_dir,
            )
    else:
        data_dir.mkdir(parents=True, mode=_OWNER_ONLY_DIR)
        data_dir.chmod(_OWNER_ONLY_DIR)  # mkdir's mode goes through the umask
    database = _sqlite_file(settings.resolved_database_url)
    if database is not None:
        _create_owner_only(database)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _create_owner_only(path: Path) -> None:
    """Create ``path`` 0600 if it is missing; tighten it and SQLite's companions if not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, _OWNER_ONLY_FILE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            file.chmod(_OWNER_ONLY_FILE)
