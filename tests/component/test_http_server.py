"""The monitor's HTTP server on a real socket: routes, methods, limits, headers, and a
handler that fails (127.0.0.1, a free port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from geoha.ops import http_server
from geoha.ops.http_server import (
    BODY_MAX,
    CONNECTIONS_MAX,
    HEAD_MAX,
    SECURITY_HEADERS,
    HttpServer,
    Request,
    Response,
)

pytestmark = [pytest.mark.anyio, pytest.mark.component]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def handler(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("a bug")
    if request.path == "/echo":
        return Response(200, repr(sorted(request.query.items())).encode())
    return Response.text(404, "not found")


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    async with HttpServer("127.0.0.1", 0, handler) as srv:
        yield srv


async def raw(server: HttpServer, data: bytes, read_s: float = 2.0) -> bytes:
    """Send bytes, read until the server closes (or `read_s` passes)."""
    reader, writer = await asyncio.open_connection(server.address, server.port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        async with asyncio.timeout(read_s):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


async def test_get_head_and_query_with_security_headers(server: HttpServer) -> None:
    base = f"http://{server.address}:{server.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        got = await client.get("/echo?minutes=5&x=1")
        assert got.status_code == 200
        assert got.text == "[('minutes', ['5']), ('x', ['1'])]"
        for name, value in SECURITY_HEADERS.items():
            assert got.headers[name] == value
        assert "'unsafe-inline'" not in got.headers["content-security-policy"]
        head = await client.head("/echo")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0
        assert (await client.get("/nowhere")).status_code == 404
        again = await client.get("/echo")  # the same keep-alive connection goes on
        assert again.status_code == 200


async def test_other_methods_bad_queries_and_failing_handlers(server: HttpServer) -> None:
    base = f"http://{server.address}:{server.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        post = await client.post("/echo", content=b"x")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
        assert (await client.get("/echo?a=1&&")).status_code == 400
        boom = await client.get("/boom")
        assert boom.status_code == 500 and "a bug" not in boom.text
        assert server.errors == 1
        assert (await client.get("/echo")).status_code == 200  # still serving


async def test_oversized_heads_and_bodies_and_garbage_are_refused(server: HttpServer) -> None:
    for end in (b"\r\n\r\n", b""):  # a whole long head, and one that never ends
        long_head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 2 * HEAD_MAX + end
        assert (await raw(server, long_head)).startswith(b"HTTP/1.1 431 ")
    big = b"x" * (BODY_MAX + 1)
    body = b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    answer = await raw(server, body)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
    assert (await raw(server, b"\x16\x03\x01 not http at all\r\n\r\n")).startswith(b"HTTP/1.1 400 ")


async def test_a_client_that_stops_mid_request_is_cut_off(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "IDLE_S", 0.3)
    started = asyncio.get_running_loop().time()
    assert await raw(server, b"GET /echo HTTP/1.1\r\nHost: x\r\n") == b""
    assert asyncio.get_running_loop().time() - started < 2


async def test_connections_beyond_the_limit_are_closed_and_service_goes_on(
    server: HttpServer,
) -> None:
    idle = [
        await asyncio.open_connection(server.address, server.port) for _ in range(CONNECTIONS_MAX)
    ]
    try:
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection(server.address, server.port)
        async with asyncio.timeout(2):
            assert await reader.read() == b""  # closed without an answer
        writer.close()
    finally:
        for _, w in idle:
            w.close()
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient() as client:
        got = await client.get(f"http://{server.address}:{server.port}/echo")
        assert got.status_code == 200


async def test_a_port_in_use_is_an_os_error(server: HttpServer) -> None:
    with pytest.raises(OSError):
        await HttpServer(server.address, server.port, handler).start()
