"""One thread writes to the store for the whole process, several callers' writes per transaction.

SQLite has one writer at a time: writers in several threads wait for each other in SQLite's
busy handler, which sleeps 1, 2, 5, 10... ms between tries, and each commit costs a session and a
WAL append. Here every write of the hot paths (submissions, engine state, execution records, log
lines) is queued to one thread, which runs whatever is queued in one transaction (group commit).
If any write of a batch fails, the batch is rolled back and its writes run again one by one, each
in its own transaction, so that an error reaches only its own caller.

Writes are ordinary repository calls: `Database.transaction()` joins the batch's transaction
when it is called on the writer thread. They must have no effect outside the store, since a
failed batch runs them a second time.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from gateway.store.errors import StoreUnavailableError

if TYPE_CHECKING:
    from gateway.store.db import Database

__all__ = ["StoreWriter"]

P = ParamSpec("P")
T = TypeVar("T")
_log = logging.getLogger(__name__)
_STOP = object()


@dataclass
class _Write:
    call: Callable[[], Any]
    loop: asyncio.AbstractEventLoop | None  # None: nobody waits (`post`)
    future: asyncio.Future[Any] | None


class StoreWriter:
    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``function`` on the writer thread, in the transaction of the current batch."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Write(lambda: function(*args, **kwargs), loop, future))
        return await future

    def post(self, function: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue a write nobody waits for; a failure is logged."""
        self._ensure_started()
        self._queue.put(_Write(lambda: function(*args, **kwargs), None, None))

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="tender-store-writer", daemon=True
                    )
                    self._thread.start()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._write([w for w in batch if isinstance(w, _Write)])
            if stop:
                return

    def _write(self, batch: list[_Write]) -> None:
        if len(batch) > 1 and (results := self._write_together(batch)) is not None:
            for write, result in zip(batch, results, strict=True):
                _resolve(write, result, None)
            return
        for write in batch:
            try:
                with self._db.batch():  # one transaction: all of the write, or none of it
                    result = write.call()
            except Exception as exc:
                _resolve(write, None, exc)
            else:
                _resolve(write, result, None)

    def _write_together(self, batch: list[_Write]) -> list[Any] | None:
        """The results of the whole batch in one transaction, or None if any write failed."""
        try:
            with self._db.batch():
                return [write.call() for write in batch]
        except Exception:
            _log.debug("a batch of %d store writes failed: writing them one by one", len(batch))
            return None


def _resolve(write: _Write, result: Any, error: BaseException | None) -> None:
    future = write.future
    if write.loop is None or future is None:
        if isinstance(error, StoreUnavailableError):  # a restart, say: no traceback for it
            _log.warning("a store write nobody waits for was dropped: %s", error)
        elif error is not None:
            _log.error("a store write failed", exc_info=error)
        return

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        write.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the caller's loop is closed: nobody waits for this answer
        _log.debug("store write finished after its event loop closed")
