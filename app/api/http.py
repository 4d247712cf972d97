"""HTTP plumbing over raw ASGI: the request view, bounded body reading, responses.

Kept free of routing and database concerns; everything here is cheap per request
(the hot paths are a dict of headers and two `send` calls).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson

from app.api.asgi import Headers, Receive, Scope, Send
from app.api.errors import ApiError

JSON = b"application/json"
MIN_LSN_COOKIE = "geoha_min_lsn"
DISCARD_MAX_BYTES = 16 * 1024 * 1024
"""At most this much of an unread body is read and dropped before answering."""
DISCARD_MAX_S = 10.0
"""For at most this long (seconds); past either bound the answer closes the connection."""


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
    body_started: bool = False
    """Whether any of the body was asked for (after which the client sends it all)."""
    body_done: bool = False
    """Whether the body has been read to its end."""

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        return cls(
            scope["method"], scope["path"], scope["query_string"], dict(scope["headers"]), receive
        )

    async def next_chunk(self) -> bytes:
        """The next piece of the body (b"" once it is done); ClientDisconnected if the client
        has left."""
        if self.body_done:
            return b""
        self.body_started = True
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        self.body_done = not message.get("more_body", False)
        chunk: bytes = message.get("body", b"")
        return chunk

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


def _declares_body(headers: dict[bytes, bytes]) -> bool:
    """Whether an HTTP/1.1 request says a body follows (by Content-Length or chunked)."""
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() != b"0"
    return b"transfer-encoding" in headers


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
    """The whole body, refusing more than `limit` bytes by header and by count.

    A refused body is left unread here; `discard_body` reads the rest before the
    answer goes out.
    """
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
    while not request.body_done:
        chunk = await request.next_chunk()
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def discard_body(
    request: Request, max_bytes: int = DISCARD_MAX_BYTES, max_s: float = DISCARD_MAX_S
) -> bool:
    """Read and drop what is left of the body; whether it was read to its end.

    An answer sent while the client is still uploading, then a close, leaves the
    upload unread in the server's socket: the kernel resets the connection and
    the client, still writing, sees the reset rather than the answer (a 413 for
    a body too large, typically). Reading the rest first lets the answer arrive
    and keeps the connection usable. Bounded by `max_bytes` and `max_s`; a
    client that sent `Expect: 100-continue` and was never asked for its body
    sends none, so nothing is read. False means the caller should close.
    """
    if request.body_done or not _declares_body(request.headers):
        return True
    expects_go_ahead = request.headers.get(b"expect", b"").lower() == b"100-continue"
    if expects_go_ahead and not request.body_started:
        return False
    dropped = 0
    try:
        async with asyncio.timeout(max_s):
            while not request.body_done and dropped <= max_bytes:
                dropped += len(await request.next_chunk())
    except TimeoutError:
        return False
    return request.body_done


async def send_response(send: Send, response: Response, common: Headers) -> None:
    headers = common + response.headers
    if response.content_type is not None:
        headers.append((b"content-type", response.content_type))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
