"""The store's own error, apart from `db.py` so that the writer thread can name it too."""

from __future__ import annotations

__all__ = ["StoreUnavailableError"]


class StoreUnavailableError(Exception):
    """The database cannot be reached for now; the cause holds the driver's error."""
