"""Request bodies: read within a limit, before anything else looks at them, and JSON read safely.

Every route is a ``LimitedRoute`` (each router's ``route_class``). Before FastAPI reads a body or
solves a dependency (authentication among them), a ``Content-Length`` over the route's limit is
answered 413 ``BodyTooLarge``; a body that streams past it is cut off with the same answer, so
that no more than the limit is ever read. A body held in memory (JSON, an urlencoded form) may
have ``max_body_bytes``; a multipart body sent to an ``UploadRoute`` (a route that takes files,
which spool to disk) and any body sent to a ``StreamRoute`` (the data store's signed URLs, which
stream to storage) may have ``max_upload_bytes``.

Reading a body can fail inside FastAPI or Starlette, which turn any failure into a bare 400;
``LimitedRoute`` gives it back its own words: a form field over Starlette's limit (1 MiB) is 413
``InputsTooLarge``, a malformed form 400 ``InvalidForm``, bad JSON 400 ``InvalidJSON``.

Starlette's own ``RequestBodyLimitMiddleware`` (FastAPI's ``max_body_size``) is not used: it
answers in plain text, and replaces the app's answer with it, where every error here is the
platform's JSON object; and its limits are fixed when the routes are declared, not by settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from compiler.values import MAX_DEPTH, json_problem
from gateway.errors import BadRequestError, PayloadTooLargeError, TenderError
from gateway.settings import Settings

__all__ = ["MAX_BODY_DEPTH", "LimitedRoute", "StreamRoute", "UploadRoute", "decode_json"]

# Bodies nest their values a few levels deep (``inputs_mapping[0].constant_value``): a value
# too deep is refused where it is checked, naming its input, and a body far deeper here.
MAX_BODY_DEPTH = 2 * MAX_DEPTH


def decode_json(data: bytes | str, what: str) -> Any:
    """The JSON value of ``data``; ``what`` names it in the error (400 ``InvalidJSON``).

    NaN and infinities are read (as floats) so that the check of each input can name the
    input that holds one; nesting deeper than ``MAX_BODY_DEPTH`` is refused here.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise _invalid_json(f"{what} is nested deeper than {MAX_BODY_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes
        raise _invalid_json(f"{what} is not valid JSON: {exc}") from None
    problem = json_problem(value, MAX_BODY_DEPTH, numbers=False)
    if problem is not None:
        raise _invalid_json(f"{what} {problem}")
    return value


def _invalid_json(message: str) -> BadRequestError:
    return BadRequestError(message, name="InvalidJSON")


class _LimitedReceive:
    """The ASGI ``receive`` of a request, raising once more than ``limit`` bytes arrived."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise _body_too_large(self.limit)
        return message


class _Request(Request):
    """A request whose JSON is read by ``decode_json``, FastAPI's own body parsing included."""

    _decoded: Any

    async def json(self) -> Any:
        if not hasattr(self, "_decoded"):
            self._decoded = decode_json(await self.body(), "the body")
        return self._decoded


class LimitedRoute(APIRoute):
    """A route whose body is held in memory: at most ``max_body_bytes`` (see the module)."""

    def body_limit(self, request: Request, settings: Settings) -> int:
        return settings.max_body_bytes

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def limited(request: Request) -> Response:
            limit = self.body_limit(request, request.app.state.settings)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _body_too_large(limit)
            receive = _LimitedReceive(request.receive, limit)
            try:
                return await handle(_Request(request.scope, receive))
            except Exception as exc:
                translated = _body_error(exc, receive)
                if translated is exc:
                    raise
                raise translated from None

        return limited


class UploadRoute(LimitedRoute):
    """A route that takes files in a multipart body, within ``max_upload_bytes``."""

    def body_limit(self, request: Request, settings: Settings) -> int:
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            return settings.max_upload_bytes
        return settings.max_body_bytes


class StreamRoute(LimitedRoute):
    """A route whose body streams to storage whatever its type, within ``max_upload_bytes``."""

    def body_limit(self, request: Request, settings: Settings) -> int:
        return settings.max_upload_bytes


def _body_error(exc: Exception, receive: _LimitedReceive) -> Exception:
    """The gateway's error for a failure to read the body, or ``exc`` itself."""
    if receive.exceeded:
        return _body_too_large(receive.limit)
    if not isinstance(exc, HTTPException):
        return exc
    # FastAPI raises its 400 "There was an error parsing the body" from what failed, and
    # Starlette its 400 for a form while handling MultiPartException.
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, TenderError):
        return cause
    if isinstance(cause, MultiPartException):
        # Starlette's words for a text field over max_part_size: "Field exceeded maximum size
        # of 1024KB." (urlencoded) and "Part exceeded maximum size of 1024KB." (multipart).
        if "exceeded maximum size" in cause.message:
            return PayloadTooLargeError(
                f"a form field is too large ({cause.message.rstrip('.')}): send large "
                "values as files",
                name="InputsTooLarge",
            )
        return BadRequestError(f"the form cannot be read: {cause.message}", name="InvalidForm")
    return exc


def _body_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is larger than the {limit} bytes this route accepts",
        name="BodyTooLarge",
        additional_data={"limit_bytes": limit},
    )
