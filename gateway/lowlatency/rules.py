"""What a low-latency deployment may be on the embedded engine, checked before anything is
written (craft-api.md section 5.4 for the fields)."""

from __future__ import annotations

import sys

from compiler import Deployment, Pipeline
from compiler.resources import memory_bytes
from gateway.errors import BadRequestError, NotSupportedError

__all__ = ["DEFAULT_PARALLEL", "check_low_latency", "check_pipeline", "memory_limit", "parallel"]

# The SDK's documented default for max_parallel_executions_per_pod.
DEFAULT_PARALLEL = 6
_MAX_PARALLEL = 256


def check_low_latency(deployment: Deployment) -> None:
    if deployment.execution_rule != "endpoint":
        raise NotSupportedError(
            "mode low_latency is for endpoints: a periodic deployment runs in mode elastic",
            name="NotSupported",
        )
    if deployment.gpu_request:
        raise NotSupportedError(
            "gpu_request is not supported by the embedded engine: it schedules no GPU",
            name="NotSupported",
        )
    given = deployment.max_parallel_executions_per_pod
    if given is not None and not 1 <= given <= _MAX_PARALLEL:
        raise BadRequestError(
            f"max_parallel_executions_per_pod must be between 1 and {_MAX_PARALLEL}, not {given}",
            name="InvalidDefinition",
        )
    if deployment.ram_request is not None:
        memory_bytes(deployment.ram_request)
        if not sys.platform.startswith("linux"):
            raise NotSupportedError(
                f"ram_request cannot be enforced on {sys.platform}: the embedded engine limits "
                "a worker's memory with RLIMIT_DATA, which only Linux enforces; leave it out",
                name="NotSupported",
            )


def check_pipeline(pipeline: Pipeline) -> None:
    if pipeline.steps:
        raise NotSupportedError(
            f"mode low_latency runs one function, and pipeline {pipeline.pipeline_name!r} has "
            f"{len(pipeline.steps)} steps: deploy it in mode elastic",
            name="NotSupported",
        )


def parallel(deployment: Deployment) -> int:
    return deployment.max_parallel_executions_per_pod or DEFAULT_PARALLEL


def memory_limit(deployment: Deployment) -> int | None:
    return None if deployment.ram_request is None else memory_bytes(deployment.ram_request)
