"""A small asynchronous client of the Kubernetes API, over httpx: JSON in and out, merge
patches, streamed lines (watches, logs), and a count of the calls made.

Errors are translated here, where they enter: the API's error statuses become ``KubeApiError``
(with the Status object's reason, message and field causes), a server that cannot be reached
becomes ``EngineUnavailableError``. A ``KubeApiError`` is itself an ``EngineUnavailableError``,
so that one the engine does not translate (a 403, a 500) reaches the caller as a 503 that says
what the API answered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator, Mapping
from typing import Any

import httpx

from gateway.engines.argo.credentials import KubeCredentials
from gateway.engines.errors import EngineUnavailableError

__all__ = ["KubeApiError", "KubeClient", "Object"]

Object = dict[str, Any]
_MERGE_PATCH = "application/merge-patch+json"


class KubeApiError(EngineUnavailableError):
    """The API answered an error status (``status``), with its Status ``reason``."""

    def __init__(self, status: int, reason: str, message: str, causes: list[Object]) -> None:
        super().__init__(f"the Kubernetes API answered {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.api_message = message
        self.causes = causes


class _BearerAuth(httpx.Auth):
    def __init__(self, credentials: KubeCredentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._credentials.bearer_token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class KubeClient:
    """One connection pool to one API server. ``calls`` counts every request sent.

    A request waits for a free connection as long as it takes: under a burst (500 endpoint calls
    at once) the pool is busy, not the API unreachable, and a request that gave up its turn
    would fail an execution the API would have taken. Once sent, a request is bounded by
    ``timeout_s`` (connect, write and read), so a connection is never held for longer.
    """

    def __init__(
        self, credentials: KubeCredentials, *, timeout_s: float = 30.0, connections: int = 64
    ) -> None:
        self.credentials = credentials
        self.calls = 0
        self._http = httpx.AsyncClient(
            base_url=credentials.server,
            auth=_BearerAuth(credentials),
            verify=credentials.ssl_context(),
            timeout=httpx.Timeout(timeout_s, pool=None),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        body: Object | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> Object:
        """The decoded answer; PATCH sends a JSON merge patch (RFC 7386)."""
        headers = {"Content-Type": _MERGE_PATCH} if method == "PATCH" else {}
        content = None if body is None else json.dumps(body).encode()
        self.calls += 1
        try:
            response = await self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return _decoded(response)

    async def get(self, path: str, **params: str) -> Object:
        return await self.request("GET", path, params=params)

    async def text(self, path: str, **params: str) -> str:
        """A plain-text answer (``pods/log``)."""
        self.calls += 1
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            _decoded(response)
        return response.text

    async def lines(
        self, path: str, params: Mapping[str, str], *, read_timeout_s: float | None
    ) -> AsyncIterator[bytes]:
        """The answer's lines as they arrive (a watch), until the server ends it."""
        self.calls += 1
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout_s, pool=None)
        try:
            async with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    await response.aread()
                    _decoded(response)
                async for line in response.aiter_lines():
                    if line:
                        yield line.encode()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: httpx.HTTPError) -> EngineUnavailableError:
        server = self.credentials.server
        return EngineUnavailableError(
            f"the Kubernetes API at {server} cannot be reached: {type(exc).__name__}: {exc}"
        )


def _decoded(response: httpx.Response) -> Object:
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text[:500]}
    if not isinstance(body, dict):
        body = {"message": str(body)[:500]}
    if response.is_error:
        raise KubeApiError(
            response.status_code,
            str(body.get("reason") or response.reason_phrase),
            str(body.get("message") or ""),
            list((body.get("details") or {}).get("causes") or []),
        )
    return body
