"""The compiler stays pure: importing it loads none of the gateway's machinery."""

from __future__ import annotations

import subprocess
import sys

# hera itself imports requests (for its WorkflowsService), so that one cannot be on the list.
FORBIDDEN = ("fastapi", "sqlalchemy", "httpx", "uvicorn", "gateway", "alembic")


def test_importing_the_compiler_loads_no_service_code() -> None:
    code = (
        "import sys, compiler\n"
        f"print(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_public_names_are_pinned() -> None:
    import compiler

    assert compiler.__all__ == sorted(compiler.__all__)
    assert {"compile_run", "compile_deployment", "CompileError", "Pipeline"} <= set(
        compiler.__all__
    )
