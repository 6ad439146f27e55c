"""Every manifest the compiler emits for examples/ and the golden cases passes Argo's own lint."""

from __future__ import annotations

import subprocess
from pathlib import Path

from compiler import compile_document, dump_yaml, parse_document

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    *sorted((REPO / "examples").glob("*.yaml")),
    *sorted(p for p in (REPO / "tests/compiler/cases").glob("*.yaml") if ".argo." not in p.name),
]


def test_every_document_passes_argo_lint(argolint: Path, tmp_path: Path) -> None:
    for document in DOCUMENTS:
        manifests = compile_document(parse_document(document.read_text()))
        (tmp_path / document.name).write_text(dump_yaml(manifests))
    linted = subprocess.run(
        [argolint, "--output", "simple", tmp_path], check=False, capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert len(DOCUMENTS) >= 9


def test_argo_lint_catches_what_the_schema_cannot(argolint: Path, tmp_path: Path) -> None:
    """A control: a reference to a missing task output passes the schema but not the lint."""
    document = parse_document((REPO / "examples/hello.yaml").read_text())
    manifest = compile_document(document)[0]
    task = manifest["spec"]["templates"][0]["dag"]["tasks"][0]
    task["arguments"]["parameters"][0]["value"] = "{{tasks.ghost.outputs.parameters.x}}"
    (tmp_path / "broken.yaml").write_text(dump_yaml([manifest]))
    linted = subprocess.run(
        [argolint, "--output", "simple", tmp_path], check=False, capture_output=True, text=True
    )
    assert linted.returncode != 0
    assert "ghost" in linted.stdout + linted.stderr
