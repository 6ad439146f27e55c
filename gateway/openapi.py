"""The served OpenAPI document (``/openapi.json``, read at ``/docs``): every route's real request
body, how it is authenticated, and the error object that every 4xx and 5xx answer is.

Routes whose body FastAPI parses (a pydantic model, ``Form``) are documented by FastAPI. Routes
that read theirs by hand (the SDK's bracket-notation forms, JSON or multipart on one route) say
what they take with ``request_body(...)`` in ``openapi_extra``; the models it names are
published under ``components.schemas``. FastAPI's 422 is replaced by the 400 that tender answers.
"""

from __future__ import annotations

import copy
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from compiler import Deployment, InputSource, OutputDestination, Pipeline

__all__ = [
    "ENDPOINT_INPUTS",
    "ENDPOINT_TOKEN",
    "ERROR_RESPONSES",
    "SIGNED_URL_RESPONSES",
    "TOO_MANY_CALLS",
    "ErrorBody",
    "binary",
    "install_openapi",
    "ref",
    "request_body",
]

_SCHEMAS = "#/components/schemas/"


class ErrorBody(BaseModel):
    """What every error answer holds (craft-api.md section 3.3); ``name`` says what went wrong
    in one word, ``message`` in a sentence that names the field, input or object at fault."""

    message: str
    name: str = Field(examples=["InvalidInputType", "BodyTooLarge", "TokenExpired"])
    request_id: str
    additional_data: Any = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The request is malformed or breaks a rule; the message names the field"),
        (401, "No access token, or a wrong, expired or revoked one"),
        (404, "No such object"),
        (409, "The name is taken, or the object is in a state that forbids this"),
        (413, "The body, or a value in it, is over its limit"),
        (500, "The execution waited for failed, or the gateway did"),
    )
}

# A low-latency deployment's calls in progress are bounded (TENDER_LOW_LATENCY_MAX_CALLS).
TOO_MANY_CALLS: dict[str, Any] = {
    "model": ErrorBody,
    "description": "The deployment has too many calls in progress: retry after Retry-After s",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}

# The signed URLs answer as S3 does, for the SDK reads them as S3's (routes/datastore.py).
SIGNED_URL_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": f"S3's XML error ({codes})",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
    for status, codes in (
        (400, "InvalidArgument, InvalidPart"),
        (403, "AccessDenied, SignatureDoesNotMatch"),
        (404, "NoSuchKey, NoSuchUpload"),
    )
}

# The endpoint token of ``/endpoints/...``: ``Authorization: EndpointToken <token>``, or the
# ``token`` query parameter (which the SDK uses for results); see routes/endpoints.py.
ENDPOINT_TOKEN: list[dict[str, list[str]]] = [{"EndpointToken": []}, {"EndpointTokenQuery": []}]
_SECURITY_SCHEMES = {
    "EndpointToken": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "EndpointToken <the endpoint's token>",
    },
    "EndpointTokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
}


def ref(name: str) -> dict[str, str]:
    """A schema published under ``components.schemas`` (see ``_published_models``)."""
    return {"$ref": _SCHEMAS + name}


def binary(description: str = "a file") -> dict[str, Any]:
    return {"type": "string", "format": "binary", "description": description}


def request_body(*, required: bool = True, **content: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a body read by hand: one schema per media type, given as keyword
    arguments named after it (``json``, ``form``, ``multipart``, ``octet_stream``)."""
    media = {
        "json": "application/json",
        "form": "application/x-www-form-urlencoded",
        "multipart": "multipart/form-data",
        "octet_stream": "application/octet-stream",
    }
    return {
        "requestBody": {
            "required": required,
            "content": {media[kind]: {"schema": schema} for kind, schema in content.items()},
        }
    }


# A call of an endpoint: its inputs by name, as a JSON object, or as a form whose file parts
# are file inputs and whose text parts are JSON-encoded values (what the SDK sends).
ENDPOINT_INPUTS = request_body(
    required=False,
    json={"type": "object", "additionalProperties": True, "description": "inputs by name"},
    multipart={
        "type": "object",
        "additionalProperties": {"anyOf": [{"type": "string"}, binary("a file input")]},
        "description": "inputs by name: files, and values as JSON text",
    },
)


def install_openapi(app: FastAPI) -> None:
    """Serve the document built here (FastAPI's documented way: replace ``app.openapi``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=version("argo-tender"),
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(_published_models())
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            document["components"].setdefault("securitySchemes", {}).update(_SECURITY_SCHEMES)
            for operation in _operations(document):
                operation["responses"].pop("422", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path in document.get("paths", {}).values()
        for method, operation in path.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]


def _published_models() -> dict[str, Any]:
    """The models hand-read bodies name, with the models they use, as JSON schemas."""
    published: dict[str, Any] = {}
    for name, model in (
        ("Pipeline", Pipeline),
        ("InputSource", InputSource),
        ("OutputDestination", OutputDestination),
    ):
        published |= _schema(name, model)
    deployment = _schema("DeploymentCreate", Deployment)
    # The URL gives the rule: POST /endpoints or /periodic-deployment.
    body = deployment["DeploymentCreate"]
    body["properties"].pop("execution_rule")
    body["required"] = [field for field in body["required"] if field != "execution_rule"]
    return published | deployment


def _schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = copy.deepcopy(
        model.model_json_schema(by_alias=True, ref_template=_SCHEMAS + "{model}")
    )
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, name: schema}
