"""Authoritative DNS with Route 53 semantics, as pure functions: no socket, clock or global random.

- **Weighted routing** (`choose_record`): one A record per answer, picked with
  probability weight / sum among the records of healthy regions. A record of
  weight 0 is only picked when every healthy record has weight 0 (then all of
  them equally), and when every region is unhealthy the choice is made as if
  all were healthy (fail-open), as Route 53 does.
- **Health checks** (`after_check`): per region, healthy -> unhealthy after
  `failure_threshold` consecutive failed checks, unhealthy -> healthy after as
  many consecutive passed ones. A check starts healthy (`CheckState()`), as
  Route 53 "considers a new health check to be healthy until there's enough
  data to determine the actual status": a controller that starts serving DNS
  does not black-hole every region until the first checks have run.
- **Answers** (`answer`): one query in wire format -> one response in wire
  format, or None for a packet to drop. The zone (`ZoneConfig`) holds the
  application's weighted name, the zone apex (SOA, NS), the name server's own
  name with its address, and `REGION.ZONE` for each region with a record
  (its entry address, not weighted nor health checked, as in the cloud render).

What `answer` does with a query:

| query | response |
|---|---|
| not parseable, or a response (QR set) | None: dropped |
| opcode other than QUERY | NOTIMP |
| not exactly one question, or more than one OPT record | FORMERR |
| EDNS version other than 0 | BADVERS |
| class other than IN, or a name outside the zone | REFUSED |
| A (or ANY) for the application's name | one weighted A record, `ttl_s`, AA |
| SOA / NS at the apex | the zone's SOA / NS (with the name server's A in additional) |
| a name of the zone, a type it has no record of | NOERROR, no answer, SOA in authority |
| a name not in the zone | NXDOMAIN, SOA in authority |

Every response fits the transport: `max_size` bytes (512 for UDP, 65535 for
TCP), raised for UDP up to `EDNS_PAYLOAD_MAX` by the client's EDNS buffer size;
a response that does not fit keeps only its question and has TC set, so the
client retries over TCP.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dnslib import (  # type: ignore[import-untyped]
    CLASS,
    EDNS0,
    NS,
    OPCODE,
    QTYPE,
    RCODE,
    RR,
    SOA,
    A,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

MAX_WEIGHT = 255
"""Route 53's largest record weight."""
UDP_PLAIN_MAX = 512
"""The largest UDP response for a client without EDNS (RFC 1035)."""
TCP_MAX = 65535
"""The largest DNS message over TCP (a two-byte length prefix)."""
EDNS_PAYLOAD_MAX = 1232
"""The largest UDP response this server sends an EDNS client, and the size it advertises
(DNS flag day 2020: fits an IPv6 packet without fragmentation)."""
BADVERS = 16
"""Extended RCODE for an EDNS version this server does not speak (RFC 6891)."""

LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
"""One lowercase host-name label (RFC 1123)."""

Labels = tuple[bytes, ...]


# -- weighted records and health ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeightedRecord:
    """One weighted A record of the application's name (a Route 53 record set member)."""

    set_id: str
    """Unique among the records (Route 53's set identifier; geoha uses the region name)."""
    region: str
    """The region whose health decides whether this record may be chosen."""
    address: str
    """IPv4 address the record answers (the region's frontend LB)."""
    weight: int
    """Relative weight, 0-255 (0: only when no healthy record weighs more)."""

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= MAX_WEIGHT:
            raise ValueError(
                f"record {self.set_id!r}: weight {self.weight} is not in 0-{MAX_WEIGHT}"
            )
        if not LABEL.fullmatch(self.region):
            raise ValueError(
                f"record {self.set_id!r}: region {self.region!r} is not a lowercase DNS label"
            )
        ipv4(self.address, f"record {self.set_id!r}: address")


def check_records(records: Iterable[WeightedRecord]) -> tuple[WeightedRecord, ...]:
    """The records as a tuple, once their set ids are known to be unique (else ValueError)."""
    result = tuple(records)
    seen: set[str] = set()
    for record in result:
        if record.set_id in seen:
            raise ValueError(f"record set id {record.set_id!r} is used twice")
        seen.add(record.set_id)
    return result


@dataclass(frozen=True, slots=True)
class CheckState:
    """A region's health as its checks have decided it so far."""

    healthy: bool = True
    """Route 53 counts a new check healthy until it has data (see the module docstring)."""
    consecutive_failures: int = 0
    consecutive_successes: int = 0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of a region: passed or not, and why, in a few words ("answered 503")."""

    passed: bool
    detail: str = ""
    latency_s: float | None = None
    """How long the check took (None: not timed)."""


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A region's health turned; `checks` consecutive checks decided it."""

    region: str
    healthy: bool
    checks: int
    detail: str
    """The deciding check's detail ("connection refused")."""

    def sentence(self) -> str:
        plural = "" if self.checks == 1 else "s"
        if self.healthy:
            return f"dns: {self.region} healthy again after {self.checks} passed check{plural}"
        last = f" (last: {self.detail})" if self.detail else ""
        return f"dns: {self.region} unhealthy after {self.checks} failed check{plural}{last}"


def after_check(state: CheckState, passed: bool, failure_threshold: int) -> CheckState:
    """The state after one more check: it turns after exactly `failure_threshold` in a row.

    A check of the other outcome resets the run being counted, as Route 53's
    "consecutive" checks do.
    """
    if failure_threshold < 1:
        raise ValueError(f"failure_threshold {failure_threshold} is not at least 1")
    if passed:
        successes = state.consecutive_successes + 1
        return CheckState(state.healthy or successes >= failure_threshold, 0, successes)
    failures = state.consecutive_failures + 1
    return CheckState(state.healthy and failures < failure_threshold, failures, 0)


def health_change(
    region: str, before: CheckState, after: CheckState, detail: str
) -> HealthChange | None:
    """What changed between two states of a region's check, None when its health did not."""
    if before.healthy == after.healthy:
        return None
    checks = after.consecutive_successes if after.healthy else after.consecutive_failures
    return HealthChange(region, after.healthy, checks, detail)


def is_healthy(health: Mapping[str, CheckState], region: str) -> bool:
    """A region without a check state yet is healthy, as a new check is."""
    state = health.get(region)
    return state is None or state.healthy


def choose_record(
    records: Sequence[WeightedRecord], health: Mapping[str, CheckState], rng: random.Random
) -> WeightedRecord | None:
    """Route 53's weighted choice among the healthy regions' records; None without records."""
    candidates = [r for r in records if is_healthy(health, r.region)] or list(records)
    total = sum(r.weight for r in candidates)
    if total == 0:
        return rng.choice(candidates) if candidates else None
    point = rng.randrange(total)
    for record in candidates:
        point -= record.weight
        if point < 0:
            return record
    raise AssertionError("unreachable: the weights add up to total")


# -- the zone ----------------------------------------------------------------------------------


def ipv4(address: str, what: str) -> str:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(f"{what} {address!r} is not an IPv4 address") from None
    return address


def labels_of(name: str) -> Labels:
    """A domain name's labels, lowercase, without the root."""
    return tuple(part.encode() for part in name.lower().rstrip(".").split("."))


def lowercase(name: DNSLabel) -> Labels:
    return tuple(label.lower() for label in name.label)


def within(name: Labels, zone: Labels) -> bool:
    return len(name) >= len(zone) and name[len(name) - len(zone) :] == zone


@dataclass(frozen=True)
class ZoneConfig:
    """The zone this server is authoritative for, and the application's name in it.

    Names are given without the trailing dot, in any case.
    """

    zone: str
    """The zone apex (`geoha.test`)."""
    name: str
    """The application's full name answered with weighted records (`app.geoha.test`, or the
    apex itself as the cloud render does)."""
    ttl_s: int
    """TTL of the weighted answers (seconds)."""
    ns_address: str
    """IPv4 address of this name server (the A record of `ns_name`)."""
    ns_name: str = ""
    """The name server's name, inside the zone (default `ns1.ZONE`)."""
    hostmaster: str = ""
    """SOA RNAME, the zone's contact as a name (default `hostmaster.ZONE`)."""
    serial: int = 1
    refresh_s: int = 7200
    retry_s: int = 900
    expire_s: int = 1209600
    """SOA timers (seconds; defaults Route 53's)."""
    negative_ttl_s: int = 60
    """SOA MINIMUM: how long resolvers cache a negative answer (seconds). Route 53 uses 86400;
    kept short so a name added while testing is not cached away for a day."""
    zone_ttl_s: int = 300
    """TTL of the SOA, NS and the name server's A record (seconds)."""

    apex: Labels = field(init=False, repr=False, compare=False)
    app: Labels = field(init=False, repr=False, compare=False)
    nameserver: Labels = field(init=False, repr=False, compare=False)
    empty_nonterminals: frozenset[Labels] = field(init=False, repr=False, compare=False)
    soa: SOA = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the derived fields are set once, here
        set_(self, "zone", self.zone.lower().rstrip("."))
        for attr, default in (("name", self.zone), ("ns_name", f"ns1.{self.zone}")):
            set_(self, attr, (getattr(self, attr) or default).lower().rstrip("."))
        set_(self, "hostmaster", (self.hostmaster or f"hostmaster.{self.zone}").rstrip("."))
        for attr in ("zone", "name", "ns_name"):
            if not all(LABEL.fullmatch(part) for part in getattr(self, attr).split(".")):
                raise ValueError(f"{attr} {getattr(self, attr)!r} is not a domain name")
        ipv4(self.ns_address, "ns_address")
        timers = ("serial", "refresh_s", "retry_s", "expire_s", "negative_ttl_s", "zone_ttl_s")
        for attr in ("ttl_s", *timers):
            if not 0 <= getattr(self, attr) <= 2**31 - 1:
                raise ValueError(f"{attr} {getattr(self, attr)} is not in 0-{2**31 - 1}")
        set_(self, "apex", labels_of(self.zone))
        set_(self, "app", labels_of(self.name))
        set_(self, "nameserver", labels_of(self.ns_name))
        for attr, labels in (("name", self.app), ("ns_name", self.nameserver)):
            if not within(labels, self.apex):
                raise ValueError(f"{attr} {getattr(self, attr)!r} is not inside zone {self.zone}")
        set_(self, "empty_nonterminals", self._empty_nonterminals())
        times = (self.serial, self.refresh_s, self.retry_s, self.expire_s, self.negative_ttl_s)
        set_(self, "soa", SOA(self.ns_name, self.hostmaster, times))

    def _empty_nonterminals(self) -> frozenset[Labels]:
        """Names between an owner name and the apex: they exist, with no record (RFC 8020)."""
        names: set[Labels] = set()
        for owner in (self.app, self.nameserver):
            names.update(owner[i:] for i in range(1, len(owner) - len(self.apex)))
        return frozenset(names - {self.app, self.nameserver})


# -- answering ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """A response to send, with what it said (for counters and display)."""

    wire: bytes
    rcode: str
    """"NOERROR", "NXDOMAIN", "REFUSED", ..."""
    qname: str = ""
    qtype: str = ""
    record: WeightedRecord | None = None
    """The weighted record chosen, when the response carries one."""

    @property
    def region(self) -> str | None:
        return None if self.record is None else self.record.region


@dataclass(slots=True)
class _Reply:
    rcode: int
    authoritative: bool = False
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    record: WeightedRecord | None = None


def answer(
    packet: bytes,
    zone: ZoneConfig,
    records: Sequence[WeightedRecord],
    health: Mapping[str, CheckState],
    rng: random.Random,
    *,
    max_size: int = UDP_PLAIN_MAX,
) -> Answer | None:
    """The response to one query, or None when the packet is to be dropped (see the module).

    `max_size` is what the transport carries for a client that asks no more:
    `UDP_PLAIN_MAX` over UDP, `TCP_MAX` over TCP.
    """
    try:
        query = DNSRecord.parse(packet)
    except Exception:  # dnslib raises DNSError, but also others on some malformed packets
        return None
    if query.header.qr:  # a response: answering it could loop between two servers
        return None
    options = [rr for rr in query.ar if rr.rtype == QTYPE.OPT]
    reply = _decide(query, options, zone, records, lambda: choose_record(records, health, rng))
    edns = len(options) == 1
    limit = max_size
    if edns:
        limit = max(max_size, min(options[0].rclass, EDNS_PAYLOAD_MAX))
    response = _message(query, reply, edns)
    try:
        wire = _fit(response, limit)
    except Exception:  # a name dnslib parsed but cannot write back (e.g. over 255 bytes)
        return None
    question = query.questions[0] if len(query.questions) == 1 else None
    return Answer(
        wire=wire,
        rcode="BADVERS" if reply.rcode == BADVERS else RCODE.get(reply.rcode),
        qname=b".".join(question.qname.label).decode("ascii", "replace") if question else "",
        qtype=QTYPE.get(question.qtype, str(question.qtype)) if question else "",
        record=reply.record,
    )


def _decide(
    query: DNSRecord,
    options: list[RR],
    zone: ZoneConfig,
    records: Sequence[WeightedRecord],
    choose: Callable[[], WeightedRecord | None],
) -> _Reply:
    if query.header.opcode != OPCODE.QUERY:
        return _Reply(RCODE.NOTIMP)
    if len(query.questions) != 1 or len(options) > 1:
        return _Reply(RCODE.FORMERR)
    if options and (options[0].ttl >> 16) & 0xFF != 0:
        return _Reply(BADVERS)
    question = query.questions[0]
    if question.qclass != CLASS.IN or not within(lowercase(question.qname), zone.apex):
        return _Reply(RCODE.REFUSED)
    reply = _Reply(RCODE.NOERROR, authoritative=True)
    exists = _lookup(reply, question, zone, records, choose)
    if not reply.answer:
        if not exists:
            reply.rcode = RCODE.NXDOMAIN
        ttl = min(zone.zone_ttl_s, zone.negative_ttl_s)
        reply.authority.append(RR(zone.zone, QTYPE.SOA, CLASS.IN, ttl, zone.soa))
    return reply


def _lookup(
    reply: _Reply,
    question: DNSQuestion,
    zone: ZoneConfig,
    records: Sequence[WeightedRecord],
    choose: Callable[[], WeightedRecord | None],
) -> bool:
    """Fill in `reply`'s records of the question's name and type; whether the name exists."""
    qname, qtype, name = question.qname, question.qtype, lowercase(question.qname)

    def wants(rtype: int) -> bool:
        return qtype in (rtype, QTYPE.ANY)

    exists = name in zone.empty_nonterminals
    if name == zone.apex:
        exists = True
        if wants(QTYPE.SOA):
            reply.answer.append(RR(qname, QTYPE.SOA, CLASS.IN, zone.zone_ttl_s, zone.soa))
        if wants(QTYPE.NS):
            reply.answer.append(RR(qname, QTYPE.NS, CLASS.IN, zone.zone_ttl_s, NS(zone.ns_name)))
            reply.additional.append(_ns_address(zone))
    if name == zone.app:
        exists = True
        if wants(QTYPE.A):
            reply.record = choose()
            if reply.record is not None:
                rdata = A(reply.record.address)
                reply.answer.append(RR(qname, QTYPE.A, CLASS.IN, zone.ttl_s, rdata))
    if name == zone.nameserver:
        exists = True
        if wants(QTYPE.A):
            reply.answer.append(_ns_address(zone))
    if len(name) == len(zone.apex) + 1:
        for record in records:
            if name[0] == record.region.encode():
                exists = True
                if wants(QTYPE.A):
                    rdata = A(record.address)
                    reply.answer.append(RR(qname, QTYPE.A, CLASS.IN, zone.ttl_s, rdata))
    return exists


def _ns_address(zone: ZoneConfig) -> RR:
    return RR(zone.ns_name, QTYPE.A, CLASS.IN, zone.zone_ttl_s, A(zone.ns_address))


def _message(query: DNSRecord, reply: _Reply, edns: bool) -> DNSRecord:
    header = DNSHeader(
        id=query.header.id,
        qr=1,
        opcode=query.header.opcode,
        aa=int(reply.authoritative),
        rd=query.header.rd,
        ra=0,
        rcode=reply.rcode & 0xF,
    )
    questions = query.questions if len(query.questions) == 1 else []
    response = DNSRecord(header, questions, list(reply.answer), auth=list(reply.authority))
    response.ar = list(reply.additional)
    if edns:
        response.ar.append(EDNS0(ext_rcode=reply.rcode >> 4, udp_len=EDNS_PAYLOAD_MAX))
    return response


def _fit(response: DNSRecord, limit: int) -> bytes:
    """The response's wire form in at most `limit` bytes: truncated with TC set when needed."""
    wire = bytes(response.pack())
    if len(wire) <= limit:
        return wire
    options = [rr for rr in response.ar if rr.rtype == QTYPE.OPT]
    response.header.tc = 1
    response.rr, response.auth, response.ar = [], [], options
    wire = bytes(response.pack())
    if len(wire) <= limit:
        return wire
    return bytes(response.truncate().pack())  # the header alone, TC set
