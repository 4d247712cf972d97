"""The API's vantage probe speaks TLS to a Patroni REST API that does (internal TLS),
verifying it against the deployment's CA, and counts a server it cannot verify as not
reached: a real TLS listener on loopback stands for Patroni, no postmaster behind it."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.api.vantage import VantageTarget, reached
from geoha.render.files import File, write_files
from geoha.traffic.tls import ca_files, issue, new_ca

pytestmark = [pytest.mark.anyio, pytest.mark.component]

HOST = "127.0.0.1"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate and key it signed for HOST: (ca, cert, key)."""
    ca = new_ca("test CA")
    write_files(ca_files(ca, tmp_path / "ca.pem", tmp_path / "ca.key"))
    cert, key = issue(ca, ["patroni"], [HOST], server=True, client=False)
    write_files([File(tmp_path / "node.crt", cert), File(tmp_path / "node.key", key, 0o600)])
    return tmp_path / "ca.pem", tmp_path / "node.crt", tmp_path / "node.key"


@pytest.fixture
async def patroni(pki: tuple[Path, Path, Path]) -> AsyncIterator[int]:
    """An HTTPS listener answering GET /liveness with 200, as Patroni does; its port."""
    _, cert, key = pki
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        status = b"200 OK" if request.startswith(b"GET /liveness ") else b"404 Not Found"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, HOST, 0, ssl=context)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


async def test_a_verified_tls_patroni_counts_as_reached(
    pki: tuple[Path, Path, Path], patroni: int
) -> None:
    ca, _, _ = pki
    target = VantageTarget("db", HOST, closed_port(), patroni)
    assert await reached(target, 2.0, trusting(ca)) is True


async def test_plain_http_or_an_unknown_ca_does_not_reach_it(
    pki: tuple[Path, Path, Path], patroni: int, tmp_path: Path
) -> None:
    target = VantageTarget("db", HOST, closed_port(), patroni)
    assert await reached(target, 2.0) is False  # plain HTTP to a TLS listener
    other = tmp_path / "other"
    other.mkdir()
    write_files(ca_files(new_ca("another CA"), other / "ca.pem", other / "ca.key"))
    assert await reached(target, 2.0, trusting(other / "ca.pem")) is False
