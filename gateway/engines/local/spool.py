"""A running step's log lines, also appended to a file in its work folder as they arrive.

The store receives a step's lines when the step ends. If the engine dies first (`kill -9`), the
next engine reads them back from this file, so that what a step wrote before the crash is kept.
One write per pipe read; no fsync: the lines must survive the engine's process, not the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from gateway.store.records import LogLine

__all__ = ["SPOOL_NAME", "LogSpool", "read_spool"]

SPOOL_NAME = "log"
_HEADER = "#pod "


class LogSpool:
    def __init__(self, path: Path, pod_name: str) -> None:
        self._file = path.open("ab", buffering=0)
        self._file.write(f"{_HEADER}{pod_name}\n".encode())

    def write(self, lines: list[LogLine]) -> None:
        text = "".join(
            f"{line.timestamp.timestamp():.6f}\t{line.stream}\t{line.content}\n" for line in lines
        )
        self._file.write(text.encode(errors="replace"))

    def close(self) -> None:
        self._file.close()


def read_spool(path: Path, workflow_name: str, node_id: str) -> Iterator[LogLine]:
    """The lines of a spool file; a last line cut by the crash is kept as far as it goes."""
    pod_name = ""
    with path.open("rb") as spool:
        for raw in spool:
            text = raw.decode(errors="replace").rstrip("\n")
            if text.startswith(_HEADER):
                pod_name = text.removeprefix(_HEADER)
                continue
            stamp, _, rest = text.partition("\t")
            stream, _, content = rest.partition("\t")
            try:
                when = datetime.fromtimestamp(float(stamp), UTC)
            except ValueError:
                continue
            if stream in ("stdout", "stderr"):
                yield LogLine(workflow_name, node_id, pod_name, when, stream, content)
