"""The step runner, run as the script it is: a subprocess with TENDER_STEP and real folders."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from templates import runner_source

RUNNER = Path(__file__).resolve().parents[2] / "templates" / "runner.py"
# CI may point this at the oldest Python the step images use (3.8) to run the whole module there.
RUNNER_PYTHON = os.environ.get("TENDER_TEST_RUNNER_PYTHON", sys.executable)


class Step:
    """One step's folders under tmp_path: user code, dependencies, inputs and outputs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.code_dir = root / "code"
        self.deps_dir = root / "deps"
        self.inputs_dir = root / "inputs"
        self.outputs_dir = root / "outputs"
        self.code_dir.mkdir()

    def write_code(self, relative: str, source: str, base: Path | None = None) -> Path:
        path = (base or self.code_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    def value_input(self, name: str, data_type: str, encoding: str = "json") -> dict[str, Any]:
        env = f"TENDER_INPUT_{name}"
        return {"name": name, "data_type": data_type, "env": env, "encoding": encoding}

    def file_input(self, name: str) -> dict[str, Any]:
        return {"name": name, "data_type": "file", "path": str(self.inputs_dir / name)}

    def output(self, name: str, data_type: str) -> dict[str, Any]:
        return {"name": name, "data_type": data_type, "path": str(self.outputs_dir / name)}

    def read_output(self, name: str) -> str:
        return (self.outputs_dir / name).read_text(encoding="utf-8")

    def written_outputs(self) -> list[str]:
        if not self.outputs_dir.exists():
            return []
        return sorted(path.name for path in self.outputs_dir.iterdir())

    def run(
        self,
        *,
        inputs: Sequence[dict[str, Any]] = (),
        outputs: Sequence[dict[str, Any]] = (),
        env: dict[str, str] | None = None,
        **spec: Any,
    ) -> subprocess.CompletedProcess[str]:
        step = {
            "function_path": "f.py",
            "function_name": "f",
            "code_dir": str(self.code_dir),
            "deps_dir": str(self.deps_dir),
            "inputs": list(inputs),
            "outputs": list(outputs),
            "max_value_bytes": 60000,
            **spec,
        }
        clean = {key: value for key, value in os.environ.items() if not key.startswith("TENDER_")}
        full_env = {**clean, "TENDER_STEP": json.dumps(step), **(env or {})}
        return subprocess.run(
            [RUNNER_PYTHON, str(RUNNER)],
            env=full_env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def step(tmp_path: Path) -> Step:
    return Step(tmp_path)


ECHO = """
def f(x):
    return {"y": x, "kind": type(x).__name__}
"""


@pytest.mark.parametrize(
    ("data_type", "value", "kind"),
    [
        ("string", "héllo, 🌍", "str"),
        ("number", 3, "int"),
        ("number", -2.5, "float"),
        ("boolean", False, "bool"),
        ("json", {"a": [1, None, "b"], "c": {"d": True}}, "dict"),
        ("json", "just a string", "str"),
        ("array", [1, "two", [3.0]], "list"),
    ],
)
def test_value_round_trips_through_function(
    step: Step, data_type: str, value: Any, kind: str
) -> None:
    step.write_code("f.py", ECHO)
    result = step.run(
        inputs=[step.value_input("x", data_type)],
        outputs=[step.output("y", data_type), step.output("kind", "string")],
        env={"TENDER_INPUT_x": json.dumps(value)},
    )
    assert result.returncode == 0, result.stderr
    assert step.read_output("y") == json.dumps(value)  # JSON text, no trailing newline
    assert json.loads(step.read_output("kind")) == kind


def test_null_input_is_passed_as_none(step: Step) -> None:
    step.write_code("f.py", "def f(x='default'):\n    return {'was_none': x is None}\n")
    result = step.run(
        inputs=[step.value_input("x", "number")],
        outputs=[step.output("was_none", "boolean")],
        env={"TENDER_INPUT_x": "null"},
    )
    assert result.returncode == 0, result.stderr
    assert step.read_output("was_none") == "true"


@pytest.mark.parametrize("env", [{}, {"TENDER_INPUT_x": ""}], ids=["unset", "empty"])
def test_omitted_input_uses_function_default(step: Step, env: dict[str, str]) -> None:
    step.write_code("f.py", "def f(x=41):\n    return {'y': x + 1}\n")
    result = step.run(
        inputs=[step.value_input("x", "number")], outputs=[step.output("y", "number")], env=env
    )
    assert result.returncode == 0, result.stderr
    assert step.read_output("y") == "42"


def test_raw_env_inputs_string_as_is_and_number_parsed(step: Step) -> None:
    step.write_code("f.py", "def f(token, count):\n    return {'y': [token, count * 2]}\n")
    result = step.run(
        inputs=[
            step.value_input("token", "string", "raw"),
            step.value_input("count", "number", "raw"),
        ],
        outputs=[step.output("y", "array")],
        env={"TENDER_INPUT_token": '{"not": json', "TENDER_INPUT_count": "21"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(step.read_output("y")) == ['{"not": json', 42]


def test_raw_env_input_that_fails_to_parse_names_the_users_variable_but_hides_value(
    step: Step,
) -> None:
    """The user mapped input ``limit`` from their variable ``API_LIMIT``: the error speaks of
    those two, never of the TENDER_INPUT_limit variable that carries the value in."""
    step.write_code("f.py", "def f(limit):\n    return None\n")
    result = step.run(
        inputs=[{**step.value_input("limit", "number", "raw"), "variable": "API_LIMIT"}],
        env={"TENDER_INPUT_limit": "hunter2-s3cret"},
    )
    assert result.returncode == 1
    assert "'limit'" in result.stderr
    assert "'API_LIMIT'" in result.stderr
    assert "TENDER_INPUT" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_file_inputs_are_passed_as_path_dicts(step: Step) -> None:
    step.inputs_dir.mkdir()
    (step.inputs_dir / "doc").write_text("file body", encoding="utf-8")
    (step.inputs_dir / "folder").mkdir()
    (step.inputs_dir / "folder" / "a.txt").write_text("a", encoding="utf-8")
    step.write_code(
        "f.py",
        """
        import os

        def f(doc, folder, absent="no file"):
            with open(doc["path"]) as file:
                text = file.read()
            return {"y": [text, os.path.isabs(doc["path"]), os.listdir(folder["path"]), absent]}
        """,
    )
    result = step.run(
        inputs=[step.file_input("doc"), step.file_input("folder"), step.file_input("absent")],
        outputs=[step.output("y", "array")],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(step.read_output("y")) == ["file body", True, ["a.txt"], "no file"]


def test_file_and_folder_outputs_are_copied(step: Step) -> None:
    step.write_code(
        "f.py",
        """
        import os

        def f():
            with open("report.txt", "w") as file:  # relative to the working folder, code_dir
                file.write("report")
            os.makedirs("model/weights")
            with open("model/weights/w.bin", "wb") as file:
                file.write(b"\\x00\\x01")
            return {"report": {"path": "report.txt"}, "model": {"path": os.path.abspath("model")}}
        """,
    )
    result = step.run(
        outputs=[step.output("report", "file"), step.output("model", "file")],
    )
    assert result.returncode == 0, result.stderr
    assert step.read_output("report") == "report"
    assert (step.outputs_dir / "model" / "weights" / "w.bin").read_bytes() == b"\x00\x01"


def test_outputs_not_returned_write_null_or_nothing(step: Step) -> None:
    step.write_code("f.py", "def f():\n    return None\n")
    result = step.run(outputs=[step.output("value", "json"), step.output("file", "file")])
    assert result.returncode == 0, result.stderr
    assert step.written_outputs() == ["value"]
    assert step.read_output("value") == "null"


def test_missing_returned_file_fails_naming_output(step: Step) -> None:
    step.write_code("f.py", "def f():\n    return {'y': 1, 'o': {'path': 'nowhere.txt'}}\n")
    result = step.run(outputs=[step.output("y", "number"), step.output("o", "file")])
    assert result.returncode == 1
    assert "'o'" in result.stderr
    assert "nowhere.txt" in result.stderr
    assert step.written_outputs() == []


def test_sibling_module_import_and_pickling_work(step: Step) -> None:
    step.write_code("lib.py", "GREETING = 'hi'\n")
    step.write_code(
        "src/f.py",
        """
        import dataclasses
        import pickle

        from lib import GREETING

        @dataclasses.dataclass
        class Point:
            x: int

        def f():
            point = pickle.loads(pickle.dumps(Point(3)))
            return {"y": [GREETING, point.x, __name__]}
        """,
    )
    result = step.run(function_path="src/f.py", outputs=[step.output("y", "array")])
    assert result.returncode == 0, result.stderr
    assert json.loads(step.read_output("y")) == ["hi", 3, "src.f"]


def test_deps_dir_and_its_pth_files_are_on_sys_path(step: Step) -> None:
    step.write_code("depmod.py", "VALUE = 'dep'\n", base=step.deps_dir)
    step.write_code("vendored/vendmod.py", "VALUE = 'vendored'\n", base=step.deps_dir)
    (step.deps_dir / "vendored.pth").write_text("vendored\n", encoding="utf-8")
    step.write_code(
        "f.py",
        "import depmod, vendmod\n\ndef f():\n    return {'y': [depmod.VALUE, vendmod.VALUE]}\n",
    )
    result = step.run(outputs=[step.output("y", "array")])
    assert result.returncode == 0, result.stderr
    assert json.loads(step.read_output("y")) == ["dep", "vendored"]


def test_missing_deps_dir_is_ignored(step: Step) -> None:
    step.write_code("f.py", "def f():\n    return {'y': 1}\n")
    result = step.run(
        deps_dir=str(step.root / "no-such-folder"), outputs=[step.output("y", "number")]
    )
    assert result.returncode == 0, result.stderr
    assert step.read_output("y") == "1"


def test_exception_in_function_prints_traceback_and_writes_nothing(step: Step) -> None:
    step.write_code(
        "f.py",
        """
        def f():
            print("user output")
            raise ValueError("boom")
        """,
    )
    result = step.run(outputs=[step.output("y", "number")])
    assert result.returncode == 1
    assert result.stdout == "user output\n"
    assert "Traceback (most recent call last):" in result.stderr
    assert 'f.py", line 4, in f' in result.stderr
    assert "ValueError: boom" in result.stderr
    assert "_call_user" not in result.stderr
    assert result.stderr.rstrip().endswith("tender: function 'f' raised ValueError")
    assert step.written_outputs() == []


def test_exception_while_importing_module_is_reported(step: Step) -> None:
    step.write_code("f.py", "import no_such_module_anywhere\n\ndef f():\n    pass\n")
    result = step.run()
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr
    assert "tender: importing f.py raised ModuleNotFoundError" in result.stderr


def test_sys_exit_in_function_is_a_failure(step: Step) -> None:
    step.write_code("f.py", "import sys\n\ndef f():\n    sys.exit(0)\n")
    result = step.run(outputs=[step.output("y", "number")])
    assert result.returncode == 1
    assert "tender: function 'f' raised SystemExit" in result.stderr
    assert step.written_outputs() == []


def test_undeclared_output_fails_naming_key(step: Step) -> None:
    step.write_code("f.py", "def f():\n    return {'y': 1, 'extra': 2}\n")
    result = step.run(outputs=[step.output("y", "number")])
    assert result.returncode == 1
    assert "tender: undeclared output 'extra'; declared outputs: ['y']" in result.stderr
    assert step.written_outputs() == []


@pytest.mark.parametrize(
    ("data_type", "returned", "received"),
    [("number", "'3'", "str"), ("number", "True", "bool"), ("array", "(1, 2)", "tuple")],
)
def test_output_type_mismatch_fails(
    step: Step, data_type: str, returned: str, received: str
) -> None:
    step.write_code("f.py", f"def f():\n    return {{'y': {returned}}}\n")
    result = step.run(outputs=[step.output("y", data_type)])
    assert result.returncode == 1
    assert f"output 'y' is declared {data_type} but got {received}" in result.stderr
    assert step.written_outputs() == []


@pytest.mark.parametrize(
    ("data_type", "text", "received"),
    [("number", '"3"', "str"), ("boolean", "1", "int"), ("string", "[]", "list")],
)
def test_input_type_mismatch_fails_before_calling(
    step: Step, data_type: str, text: str, received: str
) -> None:
    step.write_code("f.py", "def f(x):\n    print('called')\n")
    result = step.run(inputs=[step.value_input("x", data_type)], env={"TENDER_INPUT_x": text})
    assert result.returncode == 1
    assert f"input 'x' is declared {data_type} but got {received}" in result.stderr
    assert "called" not in result.stdout


@pytest.mark.parametrize("returned", ["{1, 2}", "float('nan')"])
def test_unserialisable_output_fails_naming_it(step: Step, returned: str) -> None:
    step.write_code("f.py", f"def f():\n    return {{'y': {returned}}}\n")
    result = step.run(outputs=[step.output("y", "json")])
    assert result.returncode == 1
    assert "output 'y' is not JSON-serialisable" in result.stderr
    assert step.written_outputs() == []


def test_non_dict_return_fails(step: Step) -> None:
    step.write_code("f.py", "def f():\n    return 3\n")
    result = step.run(outputs=[step.output("y", "number")])
    assert result.returncode == 1
    assert "must return a dict or None, not int" in result.stderr


def test_value_outputs_over_limit_fail_and_write_nothing(step: Step) -> None:
    step.write_code(
        "f.py",
        """
        def f():
            with open("small.txt", "w") as file:
                file.write("ok")
            return {"a": "x" * 58, "b": "y" * 58, "o": {"path": "small.txt"}}
        """,
    )
    result = step.run(
        max_value_bytes=100,
        outputs=[step.output("a", "string"), step.output("b", "string"), step.output("o", "file")],
    )
    assert result.returncode == 1
    assert "120 bytes" in result.stderr
    assert "limit of 100 bytes" in result.stderr
    assert "0.06 MB limit on non-file outputs" in result.stderr
    assert step.written_outputs() == []


def test_value_outputs_at_limit_pass(step: Step) -> None:
    step.write_code("f.py", "def f():\n    return {'a': 'x' * 98}\n")
    result = step.run(max_value_bytes=100, outputs=[step.output("a", "string")])
    assert result.returncode == 0, result.stderr
    assert len(step.read_output("a")) == 100


@pytest.mark.parametrize("relative", [True, False], ids=["dot-dot", "absolute"])
def test_function_path_escaping_code_dir_is_refused(step: Step, relative: bool) -> None:
    marker = step.root / "imported"
    outside = step.write_code(
        "outside.py", f"open({str(marker)!r}, 'w')\ndef f(): pass\n", step.root
    )
    function_path = "../outside.py" if relative else str(outside)
    result = step.run(function_path=function_path)
    assert result.returncode == 1
    assert "is outside code_dir" in result.stderr
    assert not marker.exists()


def test_function_path_shadowing_a_loaded_module_is_refused(step: Step) -> None:
    step.write_code("os.py", "def f():\n    return None\n")
    result = step.run(function_path="os.py")
    assert result.returncode == 1
    assert "would shadow module 'os'" in result.stderr


def test_missing_function_name_is_reported(step: Step) -> None:
    step.write_code("f.py", "def g():\n    return None\n")
    result = step.run()
    assert result.returncode == 1
    assert result.stderr == "tender: 'f.py' has no function named 'f'\n"


def test_missing_step_variable_is_reported(step: Step) -> None:
    result = subprocess.run(
        [RUNNER_PYTHON, str(RUNNER)],
        env={key: value for key, value in os.environ.items() if key != "TENDER_STEP"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == "tender: the TENDER_STEP environment variable is not set\n"


def test_runner_source_has_no_argo_template_tag() -> None:
    assert runner_source() == RUNNER.read_text(encoding="utf-8")
    assert "{{" not in runner_source()


def test_runner_source_is_stdlib_only_python_38() -> None:
    tree = ast.parse(runner_source(), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= sys.stdlib_module_names | {"__future__"}
