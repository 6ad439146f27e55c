"""The key layout: one module, and the key prefix written into every artifact of a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler import compile_document, parse_document
from compiler.keys import code_key, execution_prefix, pipeline_prefix, run_input_key
from compiler.manifests import CompileOptions

CASES = Path(__file__).parent / "cases"


def _keys(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["s3"]["key"]] if isinstance(node.get("s3"), dict) else []
        return found + [key for value in node.values() for key in _keys(value)]
    if isinstance(node, list):
        return [key for value in node for key in _keys(value)]
    return []


def test_prefixes_hold_the_keys_they_name() -> None:
    assert code_key("p").startswith(pipeline_prefix("p"))
    assert run_input_key("u1", "doc") == "inputs/u1/doc"
    assert execution_prefix("wf") == "executions/wf/"


def test_a_key_prefix_starts_every_artifact_key_and_nothing_else() -> None:
    for case in sorted(p for p in CASES.glob("*.yaml") if not p.name.endswith(".argo.yaml")):
        document = parse_document(case.read_text())
        [plain] = compile_document(document)
        [prefixed] = compile_document(document, CompileOptions(key_prefix="tenant/a/"))
        keys = _keys(plain)
        assert keys, case.name
        assert _keys(prefixed) == [f"tenant/a/{key}" for key in keys]
        assert str(prefixed).replace("tenant/a/", "") == str(plain)
