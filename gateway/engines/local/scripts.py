"""Python script templates byte-compiled once, as Python caches the modules it imports.

Python never caches the bytecode of the script it runs: the step runner, a 10 kB script, cost
every step about 3 ms of compiling (bench/README.md). A script template run by `python` is
compiled once per content and interpreter, by that interpreter (its bytecode format), into
`<data_dir>/scripts/`, and each step runs the `.pyc`, which Python runs as it runs a source file.
A script whose source names a path the engine remaps for each step is written out as Argo does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CompiledScripts", "is_python"]

_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")
_COMPILE = (
    "import py_compile, sys; "
    "py_compile.compile(sys.argv[1], cfile=sys.argv[2], dfile=sys.argv[3], doraise=True)"
)
_COMPILE_TIMEOUT_S = 60


def is_python(command: str) -> bool:
    """`python`, `python3`, `python3.12` or a path to one of them."""
    return _PYTHON.fullmatch(os.path.basename(command)) is not None


class CompiledScripts:
    """Safe to call from several threads: a `.pyc` is complete before it is renamed in place."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._failed: set[str] = set()

    def compiled(self, program: str, source: str) -> Path | None:
        """The `.pyc` of `source` for the interpreter `program`, or None if it cannot be made
        (then the step runs the source)."""
        try:
            real = os.path.realpath(program)
            info = os.stat(real)
        except OSError:
            return None
        identity = f"{real}\0{info.st_size}\0{info.st_mtime_ns}\0{source}"
        digest = hashlib.sha256(identity.encode()).hexdigest()
        target = self._root / f"{digest}.pyc"
        if target.exists():
            return target
        if digest in self._failed:
            return None
        self._root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._root) as scratch:
            script, compiled = Path(scratch) / "script", Path(scratch) / "script.pyc"
            script.write_text(source)
            try:
                subprocess.run(
                    [real, "-I", "-c", _COMPILE, str(script), str(compiled), "script"],
                    check=True,
                    capture_output=True,
                    timeout=_COMPILE_TIMEOUT_S,
                )
            except (OSError, subprocess.SubprocessError):
                # Not a Python that compiles this source: run it as a source, as Argo would.
                self._failed.add(digest)
                return None
            with contextlib.suppress(OSError):
                os.replace(compiled, target)
        return target if target.exists() else None
