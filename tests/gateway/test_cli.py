"""``tender compile`` as users run it: a subprocess, stdout or -o, errors on stderr."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]


def _tender(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TENDER, *map(str, args)], check=False, capture_output=True, text=True, cwd=REPO
    )


def test_compile_prints_multi_document_yaml() -> None:
    done = _tender("compile", REPO / "examples/etl.yaml")
    assert done.returncode == 0, done.stderr
    documents = list(yaml.safe_load_all(done.stdout))
    assert [d["kind"] for d in documents] == ["Workflow"]
    assert done.stderr == ""


def test_compile_writes_to_output_file(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    done = _tender("compile", REPO / "examples/word-count-endpoint.yaml", "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert yaml.safe_load(out.read_text())["kind"] == "WorkflowTemplate"


def test_compile_error_names_file_field_and_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    shutil.copy(REPO / "examples/nightly-report.yaml", bad)
    bad.write_text(bad.read_text().replace('"30 2 * * *"', '"30 2 * *"'))
    done = _tender("compile", bad)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "bad.yaml: deployment.schedule: schedule '30 2 * *' has 4 fields" in done.stderr


def test_compile_of_a_missing_file_fails() -> None:
    done = _tender("compile", "no-such-file.yaml")
    assert done.returncode != 0
    assert "no-such-file.yaml" in done.stderr


def test_names_yaml_1_1_reads_as_booleans_are_quoted() -> None:
    from compiler import dump_yaml

    text = dump_yaml([{"parameters": [{"name": "n"}, {"name": "y"}, {"name": "no"}]}])
    assert yaml.safe_load(text) == {"parameters": [{"name": "n"}, {"name": "y"}, {"name": "no"}]}
    assert "name: 'n'" in text
    assert "name: 'y'" in text


def test_the_cli_imports_what_a_command_needs_only_when_it_runs() -> None:
    """``tender token create`` took 3 to 6 s, loading hera and the server to print one line."""
    probe = "import sys, gateway.cli; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(eval(done.stdout))
    heavy = {"hera", "compiler", "fastapi", "sqlalchemy", "pydantic", "uvicorn", "alembic"}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_serve_help_shows_every_default() -> None:
    done = _tender("serve", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.replace("│", " ").split())
    for shown in ("TENDER_DATA_DIR, default ./.tender", "default 127.0.0.1", "default 8080"):
        assert shown in text, done.stdout


def test_database_upgrade_migrates_the_store_and_says_so_on_stderr(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from gateway.store import Database

    done = _tender("database", "upgrade", "--data-dir", tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "schema is up to date" in done.stderr
    db = Database(f"sqlite:///{tmp_path / 'data' / 'tender.db'}")
    try:
        tables = set(inspect(db.engine).get_table_names())
        assert {"pipelines", "executions", "api_tokens"} <= tables
    finally:
        db.dispose()


def test_argo_role_prints_the_role_the_engine_checks_and_the_charts_rules() -> None:
    from gateway.engines.argo.permissions import ROLE_RULES

    done = _tender("argo", "role", "--namespace", "ml")
    assert done.returncode == 0, done.stderr
    role = yaml.safe_load(done.stdout)
    assert role["kind"] == "Role"
    assert role["metadata"] == {"name": "tender-gateway", "namespace": "ml"}
    assert role["rules"] == ROLE_RULES
    rules = _tender("argo", "role", "--rules")
    assert rules.stdout == (REPO / "helm/tender/files/gateway-role-rules.yaml").read_text()
