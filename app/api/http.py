"""HTTP plumbing over raw ASGI: the request view, bounded body reading, responses.

Kept free of routing and database concerns; everything here is cheap per request
(the hot paths are a dict of headers and two `send` calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from app.api.asgi import Headers, Receive, Scope, Send
from app.api.errors import ApiError

JSON = b"application/json"
MIN_LSN_COOKIE = "geoha_min_lsn"


class ClientDisconnected(Exception):
    """The client went away before its request body arrived; nothing to answer."""


@dataclass(slots=True)
class Request:
    """What handlers see of an HTTP request (ASGI header names are lower case)."""

    method: str
    path: str
    query_string: bytes
    headers: dict[bytes, bytes]
    receive: Receive

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        return cls(
            scope["method"], scope["path"], scope["query_string"], dict(scope["headers"]), receive
        )

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get(b"cookie")
        if raw is None:
            return None
        for part in raw.decode("latin-1").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"')
        return None


@dataclass(slots=True)
class Response:
    """A complete response; `body` is already-encoded JSON unless `content_type` says."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    content_type: bytes | None = JSON


def json_response(status: int, payload: object, headers: Headers | None = None) -> Response:
    return Response(status, orjson.dumps(payload), headers or [])


def error_response(error: ApiError) -> Response:
    payload = {"error": {"code": error.code, "field": error.field, "message": error.message}}
    return Response(error.status, orjson.dumps(payload), list(error.headers))


def require_json(request: Request) -> None:
    """415 unless the body is declared `application/json` (charset, if any, UTF-8)."""
    raw = request.headers.get(b"content-type", b"")
    media, _, params = raw.decode("latin-1").partition(";")
    charset = params.strip().lower().replace(" ", "")
    if media.strip().lower() != "application/json" or charset not in ("", "charset=utf-8"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
            "content-type",
        )


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"body must be at most {limit} bytes", "body")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes by header and by count."""
    declared = request.headers.get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(
                400, "invalid_header", "Content-Length is not a number", "content-length"
            )
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(send: Send, response: Response, common: Headers) -> None:
    headers = common + response.headers
    if response.content_type is not None:
        headers.append((b"content-type", response.content_type))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
