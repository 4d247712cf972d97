"""The authoritative DNS server (UDP and TCP on one address and port) and its health checker.

Both share one `DnsState`: the weighted records and each region's check state,
which the caller may replace at any time, plus what the server answered
(counters per region and rcode, the last answers). Answers come from the pure
`geoha.traffic.dns.answer`; this module only moves bytes and keeps counts.

- `DnsServer`: `await start()` binds UDP and TCP, `await close()` releases
  both (or `async with`). Nothing a client sends can stop it: a packet that is
  not a query is dropped and counted; a TCP client gets `TCP_IDLE_S` per
  message and `TCP_CONNECTION_S` in all, at most `TCP_QUERY_MAX` bytes per
  query, and at most `TCP_CONNECTIONS_MAX` connections are served at once.
- `HealthChecker`: every `interval_s`, probes each region that has a record
  (an injected async probe, bounded by `timeout_s`), feeds the results to
  `after_check` and hands each change of a region's health to a callback, and
  each round's results to the callbacks in `on_round` (the health monitor).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self, cast

from geoha.errors import GeohaError
from geoha.traffic.dns import (
    TCP_MAX,
    UDP_PLAIN_MAX,
    Answer,
    CheckResult,
    CheckState,
    HealthChange,
    WeightedRecord,
    ZoneConfig,
    after_check,
    answer,
    check_records,
    health_change,
    is_healthy,
)

RECENT_ANSWERS = 50
"""How many of the last answers `DnsState.recent` keeps."""
TCP_IDLE_S = 5.0
"""How long a TCP client may take to send each message (seconds)."""
TCP_CONNECTION_S = 30.0
"""How long one TCP connection may stay open in all (seconds)."""
TCP_QUERY_MAX = 4096
"""The longest query accepted over TCP (bytes); a longer one closes the connection."""
TCP_CONNECTIONS_MAX = 64
"""TCP connections served at once; a further one is closed straight away."""
HEADER_LEN = 12


class DnsServerError(GeohaError):
    """The DNS server could not bind its address."""


@dataclass(frozen=True, slots=True)
class AnswerLog:
    """One answer, as shown to an operator."""

    at: float
    """When it was sent (the server's clock, seconds since the epoch by default)."""
    client: str
    transport: str
    """"udp" or "tcp"."""
    qname: str
    qtype: str
    rcode: str
    region: str | None
    address: str | None


@dataclass
class DnsState:
    """What the server answers from, and what it answered. The caller may replace `records`
    (through `set_records`) and `health` entries at any time."""

    records: tuple[WeightedRecord, ...] = ()
    health: dict[str, CheckState] = field(default_factory=dict)
    """Per region; a region missing here counts as healthy (a check without data yet)."""
    last_check: dict[str, CheckResult] = field(default_factory=dict)
    """Per region, its latest check's outcome and detail."""
    answers: Counter[str] = field(default_factory=Counter)
    """Weighted answers sent, per region."""
    rcodes: Counter[str] = field(default_factory=Counter)
    """Responses sent, per rcode ("NOERROR", "NXDOMAIN", ...)."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Packets and connections dropped, per reason ("malformed", "tcp_timeout", ...)."""
    recent: deque[AnswerLog] = field(default_factory=lambda: deque(maxlen=RECENT_ANSWERS))

    def set_records(self, records: Iterable[WeightedRecord]) -> None:
        """Replace the weighted records (ValueError when two share a set id)."""
        self.records = check_records(records)

    def regions(self) -> list[str]:
        """The regions with a record, in the records' order."""
        return list(dict.fromkeys(r.region for r in self.records))

    def healthy(self, region: str) -> bool:
        return is_healthy(self.health, region)


class Service(ABC):
    """Something started and closed around a block: `async with service:`."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def close_stream_server(server: asyncio.Server, connections: set[asyncio.Task[None]]) -> None:
    """Stop accepting, cancel the connections being served and wait for all of it to end."""
    server.close()
    for task in list(connections):
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)
    await server.wait_closed()


class DnsServer(Service):
    """An authoritative server for one zone on `address:port`, over UDP and TCP.

    `port=0` picks a free port, the same for both (`port` tells which once started).
    """

    def __init__(
        self,
        address: str,
        port: int,
        zone: ZoneConfig,
        state: DnsState,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.address = address
        self.port = port
        self.zone = zone
        self.state = state
        self.rng = rng or random.Random()
        self.clock = clock
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind UDP and TCP; DnsServerError when the address or port cannot be had."""
        loop = asyncio.get_running_loop()
        attempts = 5 if self.port == 0 else 1  # a free UDP port may be taken for TCP
        for attempt in range(attempts):
            try:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.address, self.port)
                )
                port = self._udp.get_extra_info("sockname")[1]
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, self.address, port, reuse_address=True
                )
            except OSError as exc:
                await self.close()
                if attempt == attempts - 1:
                    where = f"{self.address}:{self.port}"
                    raise DnsServerError(f"dns: cannot serve on {where}: {exc}") from None
            else:
                self.port = port
                return

    async def close(self) -> None:
        """Stop answering and release both sockets; open TCP connections are closed."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            await close_stream_server(self._tcp, self._connections)
            self._tcp = None

    def respond(self, packet: bytes, client: str, transport: str, max_size: int) -> bytes | None:
        """The response to one packet (None: drop it), counted and logged in the state."""
        state = self.state
        try:
            result = answer(
                packet, self.zone, state.records, state.health, self.rng, max_size=max_size
            )
        except Exception:  # a bug in answering must not stop the server; count it instead
            state.dropped["error"] += 1
            return None
        if result is None:
            state.dropped["malformed"] += 1
            return None
        self._count(result, client, transport)
        return result.wire

    def _count(self, result: Answer, client: str, transport: str) -> None:
        state = self.state
        state.rcodes[result.rcode] += 1
        record = result.record
        if record is not None:
            state.answers[record.region] += 1
        state.recent.append(
            AnswerLog(
                at=self.clock(),
                client=client,
                transport=transport,
                qname=result.qname,
                qtype=result.qtype,
                rcode=result.rcode,
                region=None if record is None else record.region,
                address=None if record is None else record.address,
            )
        )

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._connections) >= TCP_CONNECTIONS_MAX:
            self.state.dropped["tcp_busy"] += 1
            writer.close()
            return
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            async with asyncio.timeout(TCP_CONNECTION_S):
                await self._tcp_messages(reader, writer, client)
        except TimeoutError:
            self.state.dropped["tcp_timeout"] += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-message
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _tcp_messages(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: str
    ) -> None:
        """Answer length-prefixed queries until the client closes or breaks a rule."""
        while True:
            async with asyncio.timeout(TCP_IDLE_S):
                prefix = await reader.read(2)
                if not prefix:
                    return  # closed between messages: the normal end
                if len(prefix) == 1:
                    prefix += await reader.readexactly(1)
                length = int.from_bytes(prefix, "big")
                if not HEADER_LEN <= length <= TCP_QUERY_MAX:
                    self.state.dropped["tcp_length"] += 1
                    return
                packet = await reader.readexactly(length)
            wire = self.respond(packet, client, "tcp", TCP_MAX)
            if wire is not None:
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a datagram endpoint's transport (on 3.11 not a DatagramTransport subclass by type)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        wire = self.server.respond(data, f"{addr[0]}:{addr[1]}", "udp", UDP_PLAIN_MAX)
        if wire is not None and self.transport is not None:
            self.transport.sendto(wire, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier answer (the client is gone): nothing to do but count.
        self.server.state.dropped["udp_error"] += 1


Probe = Callable[[str], Awaitable[bool | CheckResult]]
"""Checks one region: True/False, or a CheckResult with a detail ("answered 503"). An
exception counts as a failed check, its message as the detail."""


def failure_detail(exc: BaseException) -> str:
    """A failed probe in a few words: the operating system's reason when there is one
    ("connection refused", under an HTTP client's "All connection attempts failed")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


async def timed_check(
    probe: Callable[[], Awaitable[bool | CheckResult]], timeout_s: float
) -> CheckResult:
    """Run one probe within `timeout_s`: its result with how long it took. A timeout or any
    exception is a failed check with the reason in a few words, never a crash."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(timeout_s):
            result = await probe()
    except TimeoutError:
        result = CheckResult(False, f"no answer within {timeout_s:g} s")
    except Exception as exc:  # any failure of the probe is a failed check
        result = CheckResult(False, failure_detail(exc))
    if not isinstance(result, CheckResult):
        result = CheckResult(result, "passed" if result else "failed")
    return replace(result, latency_s=loop.time() - started)


class HealthChecker(Service):
    """Route 53-style health checks of every region with a record, into a DnsState."""

    def __init__(
        self,
        state: DnsState,
        probe: Probe,
        *,
        interval_s: float,
        timeout_s: float,
        failure_threshold: int,
        on_change: Callable[[HealthChange], None],
    ) -> None:
        """`on_change` gets each change of a region's health (`change.sentence()` to log it);
        it runs inside the check loop, so it must not raise."""
        if not 0 < timeout_s < interval_s:
            raise ValueError(f"timeout_s {timeout_s} is not between 0 and interval_s {interval_s}")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold {failure_threshold} is not at least 1")
        self.state = state
        self.probe = probe
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.failure_threshold = failure_threshold
        self.on_change = on_change
        self.on_round: list[Callable[[dict[str, CheckResult]], None]] = []
        """Called with each round's results by region, after the health is updated."""
        self._task: asyncio.Task[None] | None = None

    async def check_once(self) -> list[HealthChange]:
        """Check every region once, all at once; the changes of health, also handed on."""
        regions = self.state.regions()
        results = await asyncio.gather(*(self._check(region) for region in regions))
        changes = []
        for region, result in zip(regions, results, strict=True):
            before = self.state.health.get(region, CheckState())
            after = after_check(before, result.passed, self.failure_threshold)
            self.state.health[region] = after
            self.state.last_check[region] = result
            change = health_change(region, before, after, result.detail)
            if change is not None:
                changes.append(change)
                self.on_change(change)
        for callback in self.on_round:
            callback(dict(zip(regions, results, strict=True)))
        return changes

    async def _check(self, region: str) -> CheckResult:
        return await timed_check(lambda: self.probe(region), self.timeout_s)

    async def run(self) -> None:
        """Check every `interval_s` (measured from each round's start) until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.check_once()
            await asyncio.sleep(max(0.0, started + self.interval_s - loop.time()))

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
