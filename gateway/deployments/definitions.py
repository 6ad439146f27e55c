"""What a deployment is, as the SDK sends it and reads it back (craft-api.md section 5.4)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from compiler import Deployment, Input, Pipeline
from compiler.documents import raise_compile_error
from gateway.dates import format_date
from gateway.errors import BadRequestError, NotSupportedError
from gateway.lowlatency.rules import check_low_latency, parallel
from gateway.store.records import DeploymentRecord

__all__ = [
    "CREATION_FAILED",
    "DISABLED",
    "PENDING",
    "UP",
    "check_endpoint_url_path",
    "deployment_of",
    "deployment_view",
    "parse_deployment",
]

PENDING, UP, FAILED, DISABLED = "creation_pending", "up", "creation_failed", "disabled"
CREATION_FAILED = FAILED
# Mapping kinds that wait for their own API: the one place that refuses them in deployments.
# Environment variables and the data store have theirs now (issue 6).
NOT_YET_SUPPORTED: tuple[str, ...] = ()
_URL_PATH = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_ENDPOINT_ONLY = ("endpoint_url_path", "endpoint_token")


def parse_deployment(body: Any, execution_rule: str) -> Deployment:
    """The body of ``POST /endpoints`` or ``/periodic-deployment``; the URL gives the rule."""
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object", name="InvalidBody")
    if execution_rule == "periodic":
        for field in _ENDPOINT_ONLY:
            if body.get(field) is not None:
                raise BadRequestError(
                    f"{field} only goes with endpoint deployments", name="InvalidDefinition"
                )
    fields = {k: v for k, v in body.items() if v is not None}
    fields["execution_rule"] = execution_rule
    if execution_rule == "endpoint":
        fields.setdefault("endpoint_url_path", fields.get("name"))
    try:
        deployment = Deployment.model_validate(fields)
    except ValidationError as exc:
        raise_compile_error(exc, "deployment")
    if deployment.mode == "low_latency":
        check_low_latency(deployment)
    check_supported_mappings(deployment)
    if deployment.endpoint_url_path is not None:
        check_endpoint_url_path(deployment.endpoint_url_path)
    return deployment


def check_supported_mappings(deployment: Deployment) -> None:
    kinds = {m.kind for m in deployment.inputs_mapping}
    kinds |= {m.kind for m in deployment.outputs_mapping}
    for kind in sorted(kinds.intersection(NOT_YET_SUPPORTED)):
        raise NotSupportedError(f"{kind} mappings are not supported yet", name="NotSupportedYet")


def check_endpoint_url_path(path: str) -> None:
    if not _URL_PATH.fullmatch(path):
        raise BadRequestError(
            f"endpoint_url_path {path!r} is not URL-safe: use 1 to 63 letters, digits, '-' and '_'",
            name="InvalidEndpointUrlPath",
        )


def deployment_of(record: DeploymentRecord) -> Deployment:
    return Deployment.model_validate(record.definition)


def deployment_view(
    record: DeploymentRecord,
    pipeline: Pipeline | None,
    pods: list[dict[str, str]] | None = None,
    *,
    schedule_error: str | None = None,
) -> dict[str, Any]:
    """The object ``get_deployment`` returns (core/deployments.py:515-612 in the SDK); ``pods``
    are a low-latency deployment's workers; a periodic deployment also says why its schedule
    failed last (``schedule_error``)."""
    deployment = deployment_of(record)
    view: dict[str, Any] = {
        "name": record.name,
        "mode": deployment.mode,
        "pipeline": {"name": record.pipeline_name},
        "execution_rule": record.execution_rule,
        "status": record.status,
        "inputs_mapping": _inputs_mapping(deployment, pipeline),
        "outputs_mapping": _outputs_mapping(deployment, pipeline),
        "created_at": format_date(record.created_at),
        "created_by": record.created_by,
        "updated_at": format_date(record.updated_at),
        "updated_by": record.updated_by,
        "is_enabled": record.is_enabled,
        "description": deployment.description,
        "execution_timeout_s": deployment.execution_timeout_s,
        "enable_parallel_executions": deployment.enable_parallel_executions,
    }
    if deployment.mode == "low_latency":
        view["max_parallel_executions_per_pod"] = parallel(deployment)
        view["ram_request"] = deployment.ram_request
        view["pods"] = pods or []
    if record.execution_rule == "endpoint":
        view["endpoint_token"] = record.endpoint_token
        view["endpoint_url_path"] = record.endpoint_url_path
    else:
        view["schedule"] = deployment.schedule
        view["human_readable_schedule"] = f"cron {deployment.schedule!r}, in UTC"
        view["schedule_error"] = schedule_error
    return view


def _described(declared: Input | Any) -> dict[str, Any]:
    return {
        "data_type": declared.data_type.value,
        "description": declared.description,
    }


def _inputs_mapping(deployment: Deployment, pipeline: Pipeline | None) -> list[dict[str, Any]]:
    mapped = {s.pipeline_input_name: s for s in deployment.inputs_mapping}
    if pipeline is None:
        return [s.model_dump(exclude_unset=True) for s in deployment.inputs_mapping]
    items = []
    for declared in pipeline.inputs:
        item = {"pipeline_input_name": declared.name, **_described(declared)}
        source = mapped.get(declared.name)
        if source is None:
            item |= {"endpoint_input_name": declared.name, "is_required": declared.required}
            if declared.default_value is not None:
                item["default_value"] = declared.default_value
        else:
            item |= source.model_dump(exclude_unset=True, exclude={"pipeline_input_name"})
        items.append(item)
    return items


def _outputs_mapping(deployment: Deployment, pipeline: Pipeline | None) -> list[dict[str, Any]]:
    mapped = {d.pipeline_output_name: d for d in deployment.outputs_mapping}
    if pipeline is None:
        return [d.model_dump(exclude_unset=True) for d in deployment.outputs_mapping]
    items = []
    for declared in pipeline.outputs:
        item = {"pipeline_output_name": declared.name, **_described(declared)}
        destination = mapped.get(declared.name)
        if destination is None:
            item["endpoint_output_name"] = declared.name
        else:
            item |= destination.model_dump(exclude_unset=True, exclude={"pipeline_output_name"})
        items.append(item)
    return items
