"""Pipelines: create, read, list, delete, run, and their executions and build logs."""

from __future__ import annotations

from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.datastructures import UploadFile

from compiler.keys import code_key
from gateway.bodies import LimitedRoute, UploadRoute
from gateway.deployments import delete_deployments_of_pipeline
from gateway.deps import CurrentUser, ServicesDep, current_user
from gateway.errors import BadRequestError, NotFoundError
from gateway.forms import coerce_pipeline_form, unflatten
from gateway.logs import LogQuery, filter_logs
from gateway.openapi import binary, ref, request_body
from gateway.pipeline_templates import pipeline_from_template, templates_of
from gateway.pipelines import (
    create_pipeline,
    delete_pipeline,
    get_pipeline,
    parse_pipeline,
    pipeline_view,
)
from gateway.responses import JSON
from gateway.runs import start_run

__all__ = ["router", "uploads"]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(current_user)], route_class=LimitedRoute)
# Creation (the code archive) and runs (file inputs) take files.
uploads = APIRouter(prefix="/api/v1", dependencies=[Depends(current_user)], route_class=UploadRoute)

Wait = Annotated[bool, Query(alias="wait_for_completion")]


@router.get("/project-information")
async def project_information() -> dict[str, Any]:
    # What the SDK falls back to when container_config leaves these keys out.
    return {"included_folders": [], "requirements_path": None}


# The SDK's create_pipeline form: nested fields in bracket notation (gateway/forms.py).
_PIPELINE_FORM = {
    "type": "object",
    "properties": {
        "pipeline_name": {"type": "string"},
        "function_path": {"type": "string"},
        "function_name": {"type": "string"},
        "description": {"type": "string"},
        "step_file": binary("the code folder as a .tar.gz"),
    },
    "required": ["pipeline_name"],
    "additionalProperties": {
        "type": "string",
        "description": "inputs[0][name], container_config[requirements_path], ...",
    },
}
_RUN_FORM = {
    "type": "object",
    "properties": {
        "json_inputs": {"type": "string", "description": "a JSON object of input values"},
        "inputs_mapping": {"type": "string", "description": "a JSON list of InputSource"},
        "outputs_mapping": {"type": "string", "description": "a JSON list of OutputDestination"},
    },
    "additionalProperties": binary("a file input, named after it"),
}


@uploads.post(
    "/pipelines",
    openapi_extra=request_body(json=ref("Pipeline"), multipart=_PIPELINE_FORM, form=_PIPELINE_FORM),
)
async def create(request: Request, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    body, step_file = await _read_creation(request)
    if "pipeline_template_name" in body:
        pipeline, step_file = pipeline_from_template(await templates_of(services), body)
    else:
        pipeline = parse_pipeline(body)
    return pipeline_view(await create_pipeline(services, pipeline, step_file, user))


async def _read_creation(request: Request) -> tuple[dict[str, Any], BinaryIO | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.json()
        if not isinstance(body, dict):
            raise BadRequestError("the body must be a JSON object", name="InvalidBody")
        return body, None
    form = await request.form()
    step_file = form.get("step_file")
    fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    if step_file is not None and not isinstance(step_file, UploadFile):
        raise BadRequestError("step_file must be a file part", name="InvalidBody")
    return coerce_pipeline_form(unflatten(fields)), None if step_file is None else step_file.file


@router.get("/pipelines")
async def list_pipelines(services: ServicesDep) -> list[dict[str, Any]]:
    records = await services.in_store(services.pipelines.list_all)
    return [
        {
            "pipeline_name": r.name,
            "created_at": pipeline_view(r)["creation_info"]["created_at"],
            "status": r.status,
        }
        for r in records
    ]


@router.get("/pipelines/{name}")
async def read(name: str, services: ServicesDep, wait: Wait = False) -> dict[str, Any]:
    return pipeline_view(await get_pipeline(services, name, wait=wait))


@router.delete("/pipelines/{name}")
async def delete(
    name: str,
    services: ServicesDep,
    force: Annotated[bool, Query(alias="force_deployments_deletion")] = False,
) -> dict[str, Any]:
    deployments = await delete_deployments_of_pipeline(services, name, force=force)
    await delete_pipeline(services, name)
    return {"pipeline": {"name": name}, "deployments": deployments}


@router.get("/pipelines/{name}/download")
async def download_code(name: str, services: ServicesDep) -> dict[str, Any]:
    """A URL to GET the pipeline's code archive from (the bucket's own, on S3)."""
    await get_pipeline(services, name)
    key = code_key(name)
    if not await services.storage.exists(key):
        raise NotFoundError(f"pipeline {name!r} has no stored code", name="CodeNotFound")
    return {"signed_url": await services.transfers.download_url(key)}


@router.get("/pipelines/{name}/executions/latest")
async def latest_execution(name: str, services: ServicesDep) -> dict[str, Any] | None:
    await get_pipeline(services, name)
    execution_id = await services.in_store(services.executions.latest_id, name)
    return None if execution_id is None else {"execution_id": execution_id}


@router.get("/pipelines/{name}/executions")
async def list_executions(name: str, services: ServicesDep) -> JSON:
    await get_pipeline(services, name)
    # Answered as is: FastAPI's own encoding would walk every one of thousands of items.
    return JSON(await services.in_store(services.executions.list_summaries, name))


@router.post("/pipelines/{name}/logs")
async def build_logs(
    name: str, services: ServicesDep, query: Annotated[LogQuery | None, Body()] = None
) -> list[dict[str, Any]]:
    record = await get_pipeline(services, name)
    return filter_logs(record.build_logs, query or LogQuery())


@uploads.post(
    "/pipelines/{name}/run",
    openapi_extra=request_body(required=False, multipart=_RUN_FORM, form=_RUN_FORM),
)
async def run(
    name: str, request: Request, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    files = {k: v.file for k, v in form.items() if isinstance(v, UploadFile)}
    record = await start_run(services, name, fields, files, user)
    return {"execution_id": record.id}
