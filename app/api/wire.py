"""One request over a fresh TCP connection, for the API's small probes (fence.py, vantage.py).

No HTTP client library: these run every half second, and a bare exchange costs a
fraction of a client's CPU. Callers bound the time (asyncio.timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl


def http_get(host: str, port: int, path: str) -> bytes:
    """An HTTP/1.1 GET that asks the server to close the connection after its answer."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode()


async def exchange(
    host: str, port: int, request: bytes, limit: int, tls: ssl.SSLContext | None = None
) -> bytes:
    """Send `request`, then read until the peer closes or `limit` bytes have come; over
    TLS verified by `tls` when given. Raises OSError when the connection fails (ssl's
    errors are OSErrors)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        writer.write(request)
        await writer.drain()
        answer = b""
        while len(answer) < limit and (more := await reader.read(limit - len(answer))):
            answer += more
        return answer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
