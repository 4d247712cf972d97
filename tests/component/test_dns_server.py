"""The DNS server on a real socket (UDP and TCP on 127.0.0.1, a free port), queried with
dnspython, and its health checker against a real HTTP server switched between 200 and 503."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from geoha.traffic.dns import CheckResult, CheckState, HealthChange, WeightedRecord, ZoneConfig
from geoha.traffic.dns_server import (
    TCP_QUERY_MAX,
    DnsServer,
    DnsServerError,
    DnsState,
    HealthChecker,
    Probe,
    timed_check,
)

pytestmark = [pytest.mark.anyio, pytest.mark.component]

HOST = "127.0.0.1"
ZONE = ZoneConfig(zone="geoha.test", name="app.geoha.test", ttl_s=30, ns_address=HOST)
DELHI = WeightedRecord("delhi", "delhi", "127.10.1.1", 50)
CHENNAI = WeightedRecord("chennai", "chennai", "127.20.1.1", 50)
TIMEOUT_S = 2.0


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    state = DnsState()
    state.set_records([DELHI, CHENNAI])
    dns_server = DnsServer(HOST, 0, ZONE, state, rng=random.Random(3))
    await dns_server.start()
    try:
        yield dns_server
    finally:
        await dns_server.close()


async def ask_udp(server: DnsServer, name: str = "app.geoha.test", qtype: str = "A") -> str:
    """The answer's address (or "" for none) and rcode, as "rcode address"."""
    query = dns.message.make_query(name, qtype)
    response = await dns.asyncquery.udp(query, HOST, port=server.port, timeout=TIMEOUT_S)
    return describe(response)


async def ask_tcp(server: DnsServer, name: str = "app.geoha.test", qtype: str = "A") -> str:
    query = dns.message.make_query(name, qtype)
    response = await dns.asyncquery.tcp(query, HOST, port=server.port, timeout=TIMEOUT_S)
    return describe(response)


def describe(response: dns.message.Message) -> str:
    addresses = [rd.address for rrset in response.answer for rd in rrset if rrset.rdtype == 1]
    return " ".join([dns.rcode.to_text(response.rcode()), *addresses])


async def test_udp_answers_are_weighted_and_counted(server: DnsServer) -> None:
    answers = [await ask_udp(server) for _ in range(400)]
    delhi = answers.count("NOERROR 127.10.1.1")
    chennai = answers.count("NOERROR 127.20.1.1")
    assert delhi + chennai == 400
    assert 140 <= delhi <= 260  # 50/50: far outside this is a broken choice, not chance
    assert dict(server.state.answers) == {"delhi": delhi, "chennai": chennai}
    assert server.state.rcodes["NOERROR"] == 400
    last = server.state.recent[-1]
    assert (last.transport, last.qname, last.qtype) == ("udp", "app.geoha.test", "A")
    assert last.client.startswith("127.0.0.1:")


async def test_answers_follow_health(server: DnsServer) -> None:
    server.state.health["delhi"] = CheckState(healthy=False, consecutive_failures=3)
    answers = {await ask_udp(server) for _ in range(50)}
    assert answers == {"NOERROR 127.20.1.1"}
    server.state.set_records([DELHI])  # every region unhealthy: fail open
    assert await ask_udp(server) == "NOERROR 127.10.1.1"


async def test_tcp_answers_and_negative_answers(server: DnsServer) -> None:
    assert (await ask_tcp(server)).split()[0] == "NOERROR"
    assert await ask_tcp(server, "nope.geoha.test") == "NXDOMAIN"
    assert await ask_udp(server, "example.com") == "REFUSED"
    assert await ask_udp(server, "app.geoha.test", "AAAA") == "NOERROR"
    assert server.state.recent[0].transport == "tcp"


async def test_several_queries_on_one_tcp_connection(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        for name in ("app.geoha.test", "geoha.test"):
            wire = dns.message.make_query(name, "A").to_wire()
            writer.write(len(wire).to_bytes(2, "big") + wire)
        for _ in range(2):
            length = int.from_bytes(await reader.readexactly(2), "big")
            response = dns.message.from_wire(await reader.readexactly(length))
            assert response.rcode() == dns.rcode.NOERROR
    finally:
        writer.close()


async def test_garbage_is_dropped_and_the_server_still_answers(server: DnsServer) -> None:
    rng = random.Random(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for size in (0, 1, 5, 12, 40, 512, 2000):
            sock.sendto(rng.randbytes(size), (HOST, server.port))
    # TCP: a length prefix past the limit closes the connection, the server keeps serving
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.write((TCP_QUERY_MAX + 1).to_bytes(2, "big") + b"x" * 20)
    assert await asyncio.wait_for(reader.read(), TIMEOUT_S) == b""
    writer.close()
    # TCP: garbage of a valid length gets no answer but the connection stays usable
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.write((20).to_bytes(2, "big") + b"\xff" * 20)
    wire = dns.message.make_query("app.geoha.test", "A").to_wire()
    writer.write(len(wire).to_bytes(2, "big") + wire)
    length = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), TIMEOUT_S), "big")
    assert dns.message.from_wire(await reader.readexactly(length)).rcode() == 0
    writer.close()
    assert (await ask_udp(server)).startswith("NOERROR 127.")
    assert server.state.dropped["malformed"] >= 6
    assert server.state.dropped["tcp_length"] == 1


async def test_close_releases_both_ports() -> None:
    state = DnsState(records=(DELHI,))
    async with DnsServer(HOST, 0, ZONE, state) as dns_server:
        port = dns_server.port
        assert await ask_udp(dns_server) == "NOERROR 127.10.1.1"
        _, writer = await asyncio.open_connection(HOST, port)  # left open: close() ends it
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))
    writer.close()


async def test_a_taken_port_is_a_clear_error(server: DnsServer) -> None:
    with pytest.raises(DnsServerError, match=rf"cannot serve on 127\.0\.0\.1:{server.port}"):
        await DnsServer(HOST, server.port, ZONE, DnsState()).start()


def closed_port() -> int:
    """A port nothing listens on (just released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


# -- the health checker ------------------------------------------------------------------------


class Backend:
    """A frontend LB's deep health URL stand-in: answers `status` to every GET."""

    def __init__(self) -> None:
        self.status = 200
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(backend.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.http.server_address[1]}/health/deep"
        self.thread = threading.Thread(
            target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()


@pytest.fixture
def backend() -> Iterator[Backend]:
    running = Backend()
    running.thread.start()
    try:
        yield running
    finally:
        running.stop()


def http_probe(urls: dict[str, str], client: httpx.AsyncClient) -> Probe:
    async def probe(region: str) -> CheckResult:
        response = await client.get(urls[region])
        return CheckResult(response.status_code == 200, f"answered {response.status_code}")

    return probe


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5) as http_client:
        yield http_client


def checker_for(
    state: DnsState, backend: Backend, client: httpx.AsyncClient, changes: list[HealthChange]
) -> HealthChecker:
    urls = {"delhi": backend.url, "chennai": backend.url}
    return HealthChecker(
        state,
        http_probe(urls, client),
        interval_s=1.0,
        timeout_s=0.5,
        failure_threshold=3,
        on_change=changes.append,
    )


async def test_a_region_turns_after_exactly_threshold_checks(
    backend: Backend, client: httpx.AsyncClient
) -> None:
    state = DnsState(records=(DELHI,))
    changes: list[HealthChange] = []
    checker = checker_for(state, backend, client, changes)
    await checker.check_once()
    assert state.healthy("delhi")
    backend.status = 503
    for _ in range(2):
        assert await checker.check_once() == []
        assert state.healthy("delhi")
    (change,) = await checker.check_once()
    assert not state.healthy("delhi")
    assert change.sentence() == "dns: delhi unhealthy after 3 failed checks (last: answered 503)"
    last = state.last_check["delhi"]
    assert (last.passed, last.detail) == (False, "answered 503")
    assert last.latency_s is not None and 0 <= last.latency_s < 2
    backend.status = 200
    for _ in range(2):
        assert await checker.check_once() == []
        assert not state.healthy("delhi")
    (change,) = await checker.check_once()
    assert state.healthy("delhi")
    assert change.sentence() == "dns: delhi healthy again after 3 passed checks"
    assert changes == [HealthChange("delhi", False, 3, "answered 503"), change]


async def test_a_refused_connection_and_a_slow_probe_fail_the_check(
    backend: Backend, client: httpx.AsyncClient
) -> None:
    state = DnsState(records=(DELHI, CHENNAI))
    backend.stop()

    async def probe(region: str) -> bool:
        if region == "chennai":
            await asyncio.sleep(5)
        await client.get(backend.url)
        return True

    checker = HealthChecker(
        state, probe, interval_s=1.0, timeout_s=0.2, failure_threshold=1, on_change=[].append
    )
    rounds: list[dict[str, CheckResult]] = []
    checker.on_round.append(rounds.append)
    changes = await checker.check_once()
    assert [sorted(r) for r in rounds] == [["chennai", "delhi"]]  # the monitor's feed
    assert rounds[0]["delhi"] == state.last_check["delhi"]
    assert {c.region for c in changes} == {"delhi", "chennai"}
    chennai, delhi_check = state.last_check["chennai"], state.last_check["delhi"]
    assert (chennai.passed, chennai.detail) == (False, "no answer within 0.2 s")
    assert chennai.latency_s is not None and chennai.latency_s >= 0.2
    assert (delhi_check.passed, delhi_check.detail) == (False, "connection refused")
    (delhi,) = (c for c in changes if c.region == "delhi")
    assert (
        delhi.sentence() == "dns: delhi unhealthy after 1 failed check (last: connection refused)"
    )


async def test_the_running_checker_moves_dns_answers(
    backend: Backend, client: httpx.AsyncClient
) -> None:
    state = DnsState(records=(DELHI, CHENNAI))
    urls = {"delhi": backend.url, "chennai": f"http://{HOST}:{closed_port()}/health/deep"}
    changes: list[HealthChange] = []
    checker = HealthChecker(
        state,
        http_probe(urls, client),
        interval_s=0.05,
        timeout_s=0.04,
        failure_threshold=2,
        on_change=changes.append,
    )
    async with DnsServer(HOST, 0, ZONE, state) as dns_server, checker:
        async with asyncio.timeout(5):
            while state.healthy("chennai"):
                await asyncio.sleep(0.02)
        assert {await ask_udp(dns_server) for _ in range(30)} == {"NOERROR 127.10.1.1"}
    assert [(c.region, c.healthy, c.checks) for c in changes] == [("chennai", False, 2)]


async def test_timed_check_turns_errors_and_timeouts_into_failed_checks() -> None:
    async def refused() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    async def slow() -> bool:
        await asyncio.sleep(5)
        return True

    async def fine() -> CheckResult:
        return CheckResult(True, "answered 200")

    failed = await timed_check(refused, 0.5)
    assert (failed.passed, failed.detail) == (False, "connection refused")
    late = await timed_check(slow, 0.1)
    assert (late.passed, late.detail) == (False, "no answer within 0.1 s")
    assert late.latency_s is not None and late.latency_s >= 0.1
    ok = await timed_check(fine, 0.5)
    assert (ok.passed, ok.detail) == (True, "answered 200") and ok.latency_s is not None
