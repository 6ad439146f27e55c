"""A pod waiting for a missing variable (a real kubelet's CreateContainerConfigError)."""

from __future__ import annotations

from typing import Any

from compiler import CompileOptions
from gateway.missing_variables import missing_variable, waiting_for_a_variable

SECRET = CompileOptions().secret_name


def _workflow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "w"},
        "status": {"phase": "Running", "nodes": {f"w-{i}": n for i, n in enumerate(nodes)}},
    }


def test_a_missing_key_of_the_variables_secret_names_the_variable() -> None:
    assert missing_variable(f"couldn't find key NO_SUCH in Secret team/{SECRET}") == "NO_SUCH"
    assert missing_variable(f"couldn't find key NO_SUCH in Secret {SECRET}.") == "NO_SUCH"
    assert missing_variable("couldn't find key sdk-token in Secret team/another") is None
    assert missing_variable("main: Error (exit code 1)") is None


def test_a_pending_pod_waiting_for_a_variable_is_found_with_its_message() -> None:
    waiting = f"CreateContainerConfigError: couldn't find key NO_SUCH in Secret team/{SECRET}"
    workflow = _workflow(
        {"type": "DAG", "phase": "Running"},
        {"type": "Pod", "phase": "Pending", "message": waiting},
    )

    assert waiting_for_a_variable(workflow) == waiting.removeprefix("CreateContainerConfigError: ")


def test_a_pod_waiting_for_anything_else_is_left_to_wait() -> None:
    execution_secret = 'CreateContainerConfigError: secret "tender-execution-w" not found'
    assert waiting_for_a_variable(_workflow({"type": "Pod", "phase": "Pending"})) is None
    assert (
        waiting_for_a_variable(
            _workflow({"type": "Pod", "phase": "Pending", "message": execution_secret})
        )
        is None
    )
    assert waiting_for_a_variable({"metadata": {"name": "w"}}) is None
