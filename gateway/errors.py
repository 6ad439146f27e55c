"""Errors of the gateway, and the one place where errors become HTTP answers.

    TenderError                  500, the base: a message meant for the caller
    ├── BadRequestError          400  the request is malformed or breaks a rule
    │   └── NotSupportedError    400  a feature this gateway does not offer (yet)
    ├── AuthenticationError      401  no token, or a wrong or expired one
    ├── ForbiddenError           403
    ├── NotFoundError            404
    ├── ConflictError            409  the name is taken, or the object is in use
    ├── PayloadTooLargeError     413
    ├── ExecutionFailedError     500  the execution the caller waits for failed
    ├── NotProvidedError         501  a part of the platform tender does not have
    ├── EngineUnavailableError   503  the engine, or the store's database, cannot be reached
    └── StorageUnavailableError  503  the bucket cannot be reached, or refuses the gateway

Foreign errors are mapped here too: the compiler's ``CompileError`` (400, naming the field), the
engines' errors, and FastAPI's own 404/405/422. Every answer is the JSON object the SDK reads:
``{"message", "name", "request_id", "additional_data"}`` (craft-api.md section 3.3).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from compiler import CompileError
from gateway import archives, datastore, forms, storage, store
from gateway.engines import errors as engine_errors
from gateway.responses import JSON

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "EngineUnavailableError",
    "ExecutionFailedError",
    "ForbiddenError",
    "NotFoundError",
    "NotProvidedError",
    "NotSupportedError",
    "PayloadTooLargeError",
    "StorageUnavailableError",
    "TenderError",
    "install_error_handlers",
]

_log = logging.getLogger("tender.gateway")


class TenderError(Exception):
    status = 500
    default_name = "InternalError"

    def __init__(
        self, message: str, *, name: str | None = None, additional_data: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name or self.default_name
        self.additional_data = additional_data


class BadRequestError(TenderError):
    status = 400
    default_name = "BadRequest"


class NotSupportedError(BadRequestError):
    default_name = "NotSupported"


class AuthenticationError(TenderError):
    status = 401
    default_name = "Unauthorized"


class ForbiddenError(TenderError):
    status = 403
    default_name = "Forbidden"


class NotFoundError(TenderError):
    status = 404
    default_name = "NotFound"


class ConflictError(TenderError):
    status = 409
    default_name = "Conflict"


class PayloadTooLargeError(TenderError):
    status = 413
    default_name = "PayloadTooLarge"


class TooManyRequestsError(TenderError):
    """Answered with ``Retry-After``: the same request may succeed a little later."""

    status = 429
    default_name = "TooManyRequests"
    retry_after_s = 1


class ExecutionFailedError(TenderError):
    status = 500
    default_name = "ExecutionFailed"


class NotProvidedError(TenderError):
    status = 501
    default_name = "NotProvided"


class EngineUnavailableError(TenderError):
    status = 503
    default_name = "EngineUnavailable"


class StorageUnavailableError(TenderError):
    status = 503
    default_name = "StorageUnavailable"


def error_response(
    request: Request,
    status: int,
    message: str,
    name: str,
    *,
    additional_data: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSON:
    body = {
        "message": message,
        "name": name,
        "request_id": getattr(request.state, "request_id", "NO_REQUEST_ID"),
        "additional_data": additional_data,
    }
    return JSON(body, status_code=status, headers=dict(headers or {}))


# Errors of the gateway's own building blocks, which know nothing of HTTP.
_FOREIGN_ERRORS: tuple[tuple[type[Exception], type[TenderError]], ...] = (
    (archives.ArchiveTooLargeError, PayloadTooLargeError),
    (archives.ArchiveError, BadRequestError),
    (archives.FunctionNotFoundError, BadRequestError),
    (forms.FormError, BadRequestError),
    (storage.InvalidKeyError, BadRequestError),
    (datastore.InvalidDatastorePathError, BadRequestError),
    (datastore.InvalidPartError, BadRequestError),
    (datastore.UploadNotFoundError, NotFoundError),
    (storage.KeyConflictError, ConflictError),
    (storage.ObjectNotFoundError, NotFoundError),
    (storage.StorageUnavailableError, StorageUnavailableError),
    (engine_errors.ObjectNotFoundError, NotFoundError),
    (engine_errors.ObjectExistsError, ConflictError),
    (engine_errors.ManifestError, BadRequestError),
    (engine_errors.InvalidLabelSelectorError, BadRequestError),
    (engine_errors.WorkflowStateError, ConflictError),
    (engine_errors.EngineUnavailableError, EngineUnavailableError),
    (store.StoreUnavailableError, EngineUnavailableError),
)


def _foreign(exc: Exception) -> TenderError | None:
    """The gateway error a foreign exception stands for, if it is one we expect."""
    if isinstance(exc, CompileError):
        return BadRequestError(
            exc.message,
            name="InvalidDefinition",
            additional_data={"field": exc.field, "rule": exc.rule},
        )
    for foreign, kind in _FOREIGN_ERRORS:
        if isinstance(exc, foreign):
            return kind(str(exc), name=type(exc).__name__.removesuffix("Error"))
    return None


async def _handle_tender(request: Request, exc: Exception) -> Response:
    error = exc if isinstance(exc, TenderError) else _foreign(exc)
    if error is None:
        _log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "Internal server error", "InternalError")
    if error.status >= 500:
        _log.error("%s on %s %s: %s", error.name, request.method, request.url.path, error.message)
    headers = None
    if isinstance(error, TooManyRequestsError):
        headers = {"Retry-After": str(error.retry_after_s)}
    return error_response(
        request,
        error.status,
        error.message,
        error.name,
        additional_data=error.additional_data,
        headers=headers,
    )


async def _handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    names = {
        400: "BadRequest",
        401: "Unauthorized",
        404: "NotFound",
        405: "MethodNotAllowed",
        413: "BodyTooLarge",
    }
    message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    name = names.get(exc.status_code, f"HTTP{exc.status_code}")
    return error_response(request, exc.status_code, message, name, headers=exc.headers)


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return error_response(
        request, 400, message, "InvalidRequest", additional_data={"errors": errors}
    )


class _RequestId:
    """Each request's id (``request.state.request_id``, answered as ``X-Request-Id``). Plain
    ASGI: Starlette's BaseHTTPMiddleware costs a task group and two streams per request."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self._app(scope, receive, send_with_id)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(_RequestId)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    # Expected errors are answered by Starlette's ExceptionMiddleware; only the catch-all goes
    # to the outermost ServerErrorMiddleware, which logs it with its traceback.
    for expected in (TenderError, CompileError, *(foreign for foreign, _ in _FOREIGN_ERRORS)):
        app.add_exception_handler(expected, _handle_tender)
    app.add_exception_handler(Exception, _handle_tender)
