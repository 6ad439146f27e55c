"""Python script templates compiled once per content and interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.engines.local.scripts import CompiledScripts, is_python

SOURCE = "import sys\nprint('ran', sys.argv[1:])\n"


def test_a_script_is_compiled_once_and_runs_as_its_source(tmp_path: Path) -> None:
    scripts = CompiledScripts(tmp_path / "scripts")
    first = scripts.compiled(sys.executable, SOURCE)
    assert first is not None
    assert scripts.compiled(sys.executable, SOURCE) == first
    assert len(list((tmp_path / "scripts").iterdir())) == 1
    ran = subprocess.run(
        [sys.executable, "-I", str(first), "x"], check=True, capture_output=True, text=True
    )
    assert ran.stdout == "ran ['x']\n"
    assert scripts.compiled(sys.executable, SOURCE + "# another\n") != first


def test_what_cannot_be_compiled_runs_as_a_source(tmp_path: Path) -> None:
    scripts = CompiledScripts(tmp_path / "scripts")
    assert scripts.compiled(sys.executable, "def broken(:\n") is None
    assert scripts.compiled("/bin/true", SOURCE) is None  # not a Python: nothing compiled
    assert scripts.compiled(str(tmp_path / "missing"), SOURCE) is None


def test_python_commands_are_recognised() -> None:
    for command in ("python", "python3", "python3.12", "/usr/bin/python3"):
        assert is_python(command)
    for command in ("sh", "pythonista", "node", "/opt/python/bin/ruby"):
        assert not is_python(command)
