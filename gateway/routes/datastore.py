"""The data store (craft-api.md section 5.7): the API, and the signed URLs it hands out.

``router`` is the API, behind access tokens. ``signed_router`` serves the URLs of the embedded
storage (an S3 bucket serves its own), with no access token: the signature is the
authorization, and its errors are S3's XML (``<Error><Code>..</Code><Message>..</Message>``),
which is what the SDK parses there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from gateway.bodies import LimitedRoute, StreamRoute
from gateway.datastore import (
    DATASTORE_PREFIX,
    SIGNED_ROUTE,
    InvalidDatastorePathError,
    InvalidPartError,
    LocalTransfers,
    Transfers,
    UploadNotFoundError,
    folder_prefix,
    object_key,
    object_view,
)
from gateway.deps import ServicesDep, current_user
from gateway.errors import NotFoundError
from gateway.openapi import binary, request_body
from gateway.services import Services
from gateway.signed_urls import SignedUrlError
from gateway.storage import InvalidKeyError, KeyConflictError, ObjectInfo, ObjectNotFoundError

__all__ = ["router", "signed_router"]

router = APIRouter(
    prefix="/api/v1/data-store", dependencies=[Depends(current_user)], route_class=LimitedRoute
)
signed_router = APIRouter(route_class=StreamRoute)


def _local_transfers(services: Services) -> LocalTransfers:
    """The signed routes serve only what the embedded storage signed."""
    if not isinstance(services.transfers, LocalTransfers):
        raise _NotServedError("this gateway's storage signs its own URLs")
    return services.transfers


def _transfers(services: ServicesDep) -> Transfers:
    return services.transfers


TransfersDep = Annotated[Transfers, Depends(_transfers)]


class _ObjectPath(BaseModel):
    path_to_object: str


class _Part(BaseModel):
    path_to_object: str
    multipart_upload_configuration: Any = None
    part_number: int
    chunk_size: int | None = None
    size: int | None = None


class _UploadedPart(BaseModel):
    number: int
    metadata: str | None = None  # the part's ETag; absent when its PUT got none


class _MultipartEnd(BaseModel):
    path_to_object: str
    multipart_upload_configuration: Any = None
    parts: list[_UploadedPart] = Field(min_length=1)


@router.post("/information")
async def information(body: _ObjectPath, services: ServicesDep) -> dict[str, Any]:
    key = object_key(body.path_to_object)
    return object_view(await _stat(services, key, body.path_to_object))


@router.get("/list")
async def list_objects(
    services: ServicesDep,
    folder_path: Annotated[str | None, Query()] = None,
    continuation_token: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    page = await services.storage.list(
        folder_prefix(folder_path),
        continuation_token=continuation_token or None,
        limit=services.settings.datastore_page_size,
    )
    return {
        "items": [object_view(info) for info in page.items],
        "continuation_token": page.next_token,
    }


@router.get("/upload")
async def upload(
    path_to_object: Annotated[str, Query()], transfers: TransfersDep
) -> dict[str, Any]:
    url, fields = await transfers.upload_url(object_key(path_to_object))
    return {"signed_url": url, "fields": fields}


@router.post("/upload/multipart")
async def start_multipart(body: _ObjectPath, transfers: TransfersDep) -> dict[str, Any]:
    return await transfers.start_multipart(object_key(body.path_to_object))


@router.post("/upload/multipart/part")
async def multipart_part(body: _Part, transfers: TransfersDep) -> dict[str, Any]:
    key = object_key(body.path_to_object)
    url, headers = await transfers.part_url(
        key, body.multipart_upload_configuration, body.part_number
    )
    return {"signed_url": url, "headers": headers}


@router.post("/upload/multipart/end")
async def end_multipart(body: _MultipartEnd, transfers: TransfersDep) -> dict[str, Any]:
    key = object_key(body.path_to_object)
    parts = [(part.number, part.metadata) for part in body.parts]
    await transfers.complete_multipart(key, body.multipart_upload_configuration, parts)
    return {"path": body.path_to_object}


@router.post("/download")
async def download(
    path_to_object: Annotated[str, Form()], services: ServicesDep, transfers: TransfersDep
) -> dict[str, Any]:
    key = object_key(path_to_object)
    await _stat(services, key, path_to_object)
    return {"signed_url": await transfers.download_url(key)}


@router.delete("/delete")
async def delete(path_to_object: Annotated[str, Form()], services: ServicesDep) -> dict[str, Any]:
    if not await services.storage.delete(object_key(path_to_object)):
        raise _not_found(path_to_object)
    return {"path": path_to_object}


async def _stat(services: Services, key: str, path: str) -> ObjectInfo:
    try:
        return await services.storage.stat(key)
    except ObjectNotFoundError:
        raise _not_found(path) from None


def _not_found(path: str) -> NotFoundError:
    return NotFoundError(f"no object {path!r} in the data store", name="ObjectNotFound")


# The signed URLs: one route, whose method is part of what is signed.

_Handler = Callable[[LocalTransfers, dict[str, str]], Awaitable[Response]]


@signed_router.get(SIGNED_ROUTE)
async def signed_download(request: Request, services: ServicesDep) -> Response:
    async def send(transfers: LocalTransfers, params: dict[str, str]) -> Response:
        chunks = await transfers.send(params)
        return StreamingResponse(chunks, media_type="application/octet-stream")

    return await _signed(request, services, send)


@signed_router.post(
    SIGNED_ROUTE,
    openapi_extra=request_body(
        multipart={
            "type": "object",
            "properties": {"file": binary("the object")},
            "required": ["file"],
        }
    ),
)
async def signed_upload(request: Request, services: ServicesDep) -> Response:
    async def receive(transfers: LocalTransfers, params: dict[str, str]) -> Response:
        async with request.form() as form:
            files = [value for value in form.getlist("file") if isinstance(value, UploadFile)]
            if len(files) != 1:
                raise _ArgumentError("POST requires exactly one file part, named 'file'")
            await transfers.receive_upload(params, files[0].file)
        return Response(status_code=204)

    return await _signed(request, services, receive)


@signed_router.put(
    SIGNED_ROUTE, openapi_extra=request_body(octet_stream=binary("one part of the object"))
)
async def signed_part(request: Request, services: ServicesDep) -> Response:
    async def receive(transfers: LocalTransfers, params: dict[str, str]) -> Response:
        if not params.get("part_number", "").isdigit() or "upload_id" not in params:
            raise _ArgumentError("this URL is not one for a part of a multipart upload")
        etag = await transfers.receive_part(params, request.stream())
        return Response(status_code=200, headers={"ETag": etag})

    return await _signed(request, services, receive)


class _ArgumentError(ValueError):
    pass


class _NotServedError(LookupError):
    pass


# Exceptions as S3 names them, with their status.
_S3_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (ObjectNotFoundError, 404, "NoSuchKey"),
    (UploadNotFoundError, 404, "NoSuchUpload"),
    (InvalidPartError, 400, "InvalidPart"),
    (InvalidDatastorePathError, 400, "InvalidArgument"),
    (InvalidKeyError, 400, "InvalidArgument"),
    (_ArgumentError, 400, "InvalidArgument"),
    (_NotServedError, 404, "NoSuchBucket"),
    (KeyConflictError, 409, "KeyConflict"),
)


async def _signed(request: Request, services: Services, handle: _Handler) -> Response:
    try:
        transfers = _local_transfers(services)
        params = transfers.signer.verify(
            request.method, SIGNED_ROUTE, request.query_params.multi_items(), time.time()
        )
        if "path" not in params and "key" not in params:
            raise _ArgumentError("this signed URL names no object")
        return await handle(transfers, params)
    except SignedUrlError as exc:
        return _xml_error(request, 403, exc.code, exc.message)
    except (ObjectNotFoundError, ValueError, LookupError) as exc:
        for kind, status, code in _S3_ERRORS:
            if isinstance(exc, kind):
                message = str(exc)
                if isinstance(exc, ObjectNotFoundError):
                    path = exc.key.removeprefix(DATASTORE_PREFIX)
                    message = f"no object {path!r} in the data store"
                return _xml_error(request, status, code, message)
        raise


def _xml_error(request: Request, status: int, code: str, message: str) -> Response:
    request_id = getattr(request.state, "request_id", "")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{escape(request_id)}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")
