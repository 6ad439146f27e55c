"""What the embedded engine accepts as a low-latency deployment, before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import CompileError, Deployment, Pipeline
from gateway.errors import BadRequestError, NotSupportedError
from gateway.lowlatency.rules import check_low_latency, check_pipeline, memory_limit, parallel


def _deployment(**fields: Any) -> Deployment:
    return Deployment.model_validate(
        {"name": "d", "execution_rule": "endpoint", "mode": "low_latency", **fields}
    )


def test_the_defaults_and_the_memory_limit() -> None:
    assert parallel(_deployment()) == 6
    assert parallel(_deployment(max_parallel_executions_per_pod=2)) == 2
    assert memory_limit(_deployment()) is None
    assert memory_limit(_deployment(ram_request="1GiB")) == 1024**3


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"execution_rule": "periodic", "schedule": "0 * * * *"}, NotSupportedError, "endpoints"),
        ({"gpu_request": 1}, NotSupportedError, "gpu_request"),
        ({"max_parallel_executions_per_pod": 0}, BadRequestError, "between 1 and 256"),
        ({"ram_request": "a lot"}, CompileError, "is not a memory size"),
    ],
)
def test_what_is_refused(fields: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_low_latency(_deployment(**fields))


def test_a_pipeline_of_steps_is_refused() -> None:
    step = {"name": "s", "function_path": "f.py", "function_name": "f"}
    check_pipeline(Pipeline(pipeline_name="one", function_path="f.py", function_name="f"))
    with pytest.raises(NotSupportedError, match="has 2 steps"):
        check_pipeline(
            Pipeline.model_validate(
                {"pipeline_name": "dag", "steps": [step, {**step, "name": "t"}]}
            )
        )
