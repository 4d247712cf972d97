"""A small HTTP/1.1 server for the monitor's dashboard, JSON and `/metrics` (GET only).

h11 parses the protocol; this module bounds what a client may cost: a request
head of at most `HEAD_MAX` bytes, `IDLE_S` to send each request, a body of at
most `BODY_MAX` bytes (a GET has none), `CONNECTIONS_MAX` connections served at
once. Anything but GET or HEAD gets 405, a request it cannot parse 400, and a
handler that fails 500 without stopping the server. Every answer carries the
security headers (a Content-Security-Policy without inline script or style).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import h11

from geoha.traffic.dns_server import Service, close_stream_server

HEAD_MAX = 16 * 1024
"""The longest request line plus headers accepted (bytes)."""
READ_CHUNK = 4096
"""Bytes read at a time: a head still unfinished after HEAD_MAX bytes is refused (431)."""
BODY_MAX = 1024
"""The longest request body read before answering 413 (bytes)."""
IDLE_S = 10.0
"""How long a client may take to send each request (seconds)."""
CONNECTIONS_MAX = 32
"""Connections served at once; a further one is closed straight away."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        return cls(status, (message + "\n").encode())


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer(Service):
    """Serves `handler` on `address:port` (`port=0`: a free one, in `port` once started)."""

    def __init__(self, address: str, port: int, handler: Handler) -> None:
        self.address = address
        self.port = port
        self.handler = handler
        self.errors = 0
        """Requests a handler failed on (each answered 500)."""
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind; OSError when the address or port cannot be had."""
        self._server = await asyncio.start_server(
            self._serve, self.address, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            await close_stream_server(self._server, self._connections)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._connections) >= CONNECTIONS_MAX:
            writer.close()
            return
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_MAX)
        try:
            while await self._one_request(conn, reader, writer):
                conn.start_next_cycle()
        except (TimeoutError, ConnectionError, h11.LocalProtocolError):
            pass  # a slow, vanished or confused client: just close
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one request and answer it; False when the connection is to close."""
        try:
            event = await _next_event(conn, reader)
            if not isinstance(event, h11.Request):
                return False  # the client closed between requests
            if not await _body_fits(conn, reader):
                await _send(conn, writer, Response.text(413, "request body too large"), False)
                return False
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                status = exc.error_status_hint
                await _send(conn, writer, Response.text(status, HTTPStatus(status).phrase), False)
            return False
        method = event.method.decode("ascii", "replace")
        response = await self._answer(method, event.target.decode("ascii", "replace"))
        await _send(conn, writer, response, method == "HEAD")
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _answer(self, method: str, target: str) -> Response:
        if method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD\n", headers={"Allow": "GET, HEAD"})
        parts = urlsplit(target)
        try:
            query = parse_qs(parts.query, strict_parsing=bool(parts.query), max_num_fields=20)
        except ValueError:
            return Response.text(400, "bad query string")
        try:
            return await self.handler(Request(method, parts.path, query))
        except Exception:  # a failing handler answers 500; the server goes on
            self.errors += 1
            return Response.text(500, "internal error")


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Event | None:
    """The next request event; None when the client closed the connection."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            async with asyncio.timeout(IDLE_S):
                data = await reader.read(READ_CHUNK)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        return event  # type: ignore[return-value]  # NEED_DATA and PAUSED are handled above


async def _body_fits(conn: h11.Connection, reader: asyncio.StreamReader) -> bool:
    """Read the request's body up to its end; False when it passes BODY_MAX."""
    size = 0
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > BODY_MAX:
                return False
        elif isinstance(event, h11.EndOfMessage) or event is None:
            return True


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, response: Response, head_only: bool
) -> None:
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        *SECURITY_HEADERS.items(),
        *response.headers.items(),
    ]
    if conn.their_state is not h11.DONE:
        headers.append(("Connection", "close"))
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    assert data is not None  # h11 returns bytes for every event but ConnectionClosed
    if not head_only:
        data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    writer.write(data)
    await writer.drain()
