"""Browser-like clients for failover drills: the load, and what each client saw.

Each client behaves as a browser running the reference web app would:

- it looks the application's name up in the global DNS (UDP, dnslib) and keeps
  the answer for its TTL; it asks again only once the TTL has run out, however
  many connections fail before that (browsers do not re-resolve early). A
  client joins with an answer of random age, as a steady population of
  browsers has, so their answers do not all expire at once. A failed lookup
  keeps the old answer and is tried again a second later. (A target with a
  fixed address, as `geoha load --region` has, is never looked up);
- it sends every request to the answered address, port 8080, with the name in
  `Host`; a broken connection is dropped and the next request opens a new one;
- it keeps the read-your-writes token (`geoha_min_lsn`, which the API sets as a
  cookie on each write) for the name, not for the address, as a browser keeps
  the cookie of a site whatever address serves it;
- reads (the list, or its own latest theme) are retried with backoff;
- a write creates a theme under a name used once, and is never retried blindly:
  when its outcome is unknown (a 503 saying so, 502, 504, a timeout or a
  connection lost once sent) the client reads the list back, page by page, for
  its name, and sends the write again only if it is not there. A write that
  never reached a server (refused, no server, the API's 503 saying no primary
  took it) is sent again after a pause.

Each client has two tabs, one reading and one writing, each doing one operation
at a time on connections of its own (a save that hangs does not stop the page
from reading), sharing the client's DNS answer and token.

The load is bounded three ways: no new request after the load's end (a write
in flight may finish deciding its outcome within `grace_s`), at most
`ops_cap` operations, and at most `request_cap` requests in all.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from dnslib import QTYPE, RCODE, DNSError, DNSRecord  # type: ignore[import-untyped]

from geoha.ops.drill_model import (
    OK,
    AckedBy,
    Attempt,
    Clock,
    OpKind,
    Resolution,
    WriteOutcome,
    WriteRecord,
)

UNKNOWN_503 = "503 outcome unknown"
NOT_SENT = frozenset(
    {
        "connect failed",
        "connect timeout",
        "no DNS answer",
        "503 database unavailable",
        "503 starting",
        "503 no server",
    }
)
"""Failures of a write that prove it reached no primary: it may be sent again."""
CAPPED = "request cap reached"


@dataclass(frozen=True)
class Target:
    """Where the clients go: the application's name, the DNS server, the entries."""

    name: str
    dns_host: str
    dns_port: int
    http_port: int
    regions: dict[str, str]
    """Entry address -> its region."""
    address: str | None = None
    """One entry every request goes to, with no DNS lookup (None: the address the global
    DNS answers, as a browser's)."""


@dataclass(frozen=True)
class ClientSettings:
    read_share: float = 0.8
    connect_timeout_s: float = 2.0
    request_timeout_s: float = 10.0
    dns_timeout_s: float = 1.0
    backoff_s: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    """Pauses between tries of a read, a read-back page or a write; the last repeats."""
    read_tries: int = 5
    write_deadline_s: float = 20.0
    """A write decides its outcome within this long after it was first sent."""
    readback_pages: int = 20
    readback_window_s: float = 60.0
    """A read-back stops at themes created this long before the write was first sent."""
    grace_s: float = 20.0


def classify_answer(status: int, body: bytes) -> str:
    """An HTTP answer as an attempt's outcome: "ok" for 2xx, else what a client can tell."""
    if 200 <= status < 300:
        return OK
    if status != 503:
        return str(status)
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "503 no server"  # not the API's: the load balancer found no server
    if code == "database_unavailable":
        return UNKNOWN_503 if "outcome is unknown" in message else "503 database unavailable"
    return f"503 {code}"


def error_detail(status: int, body: bytes) -> str:
    """What a failed answer says: the API's error message, or the text of the body (an LB's
    page without its markup)."""
    try:
        return f"{status}: {json.loads(body)['error']['message']}"[:200]
    except (ValueError, KeyError, TypeError):
        text = re.sub(r"<[^>]*>", " ", body[:400].decode("utf-8", "replace"))
        return f"{status}: {' '.join(text.split())}"[:200]


def classify_error(exc: httpx.TransportError) -> str:
    """A request that got no answer: whether it could have reached a server."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect failed"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "connection lost"


class Budget:
    """How many operations and requests all clients may still make (thread-safe)."""

    def __init__(self, ops: int, requests: int) -> None:
        self.ops = ops
        self.requests = requests
        self.capped = False
        self._lock = threading.Lock()

    def take_op(self) -> bool:
        with self._lock:
            if self.ops <= 0 or self.requests <= 0:
                return False
            self.ops -= 1
            return True

    def take_request(self) -> bool:
        with self._lock:
            if self.requests <= 0:
                self.capped = True
                return False
            self.requests -= 1
            return True


@dataclass
class ClientLog:
    attempts: list[Attempt] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    writes: list[WriteRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Shared:
    """What every client of one load shares."""

    target: Target
    settings: ClientSettings
    clock: Clock
    budget: Budget
    stop: threading.Event
    tag: str
    """Part of every theme name, unique to the drill."""


class Tab:
    """One of a client's two tabs: it reads, or it writes (and reads back), one operation at a
    time, with connections of its own; a save that hangs does not stop the other tab."""

    def __init__(self, kind: OpKind, settings: ClientSettings, seed: int) -> None:
        self.kind = kind
        self.rng = random.Random(seed)
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self.http = httpx.Client(
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            cookies=no_cookies,  # the client keeps the token by name, not by address
            trust_env=False,
        )


class BrowserClient:
    """One simulated browser (see the module's docstring): a reading and a writing tab that
    share the DNS answer and the read-your-writes token."""

    def __init__(self, index: int, shared: Shared, seed: int) -> None:
        self.index = index
        self.target = shared.target
        self.settings = shared.settings
        self.clock = shared.clock
        self.budget = shared.budget
        self.stop = shared.stop
        self.tag = shared.tag
        self.rng = random.Random(seed)
        self.tabs = {
            kind: Tab(kind, shared.settings, seed * 3 + i)
            for i, kind in enumerate((OpKind.READ, OpKind.WRITE), 1)
        }
        self.log = ClientLog()
        self.dns_lock = threading.Lock()
        self.address: str | None = None
        self.expires = 0.0
        self.dns_retry_at = 0.0
        self.min_lsn: str | None = None
        self.last_id: int | None = None
        self.writes_sent = 0

    # -- the loops -----------------------------------------------------------------------

    def run(self, tab: Tab, first_at: float, interval_s: float, end_at: float) -> None:
        """One operation of the tab's kind every `interval_s` from `first_at` until `end_at`
        (late ones are not caught up)."""
        next_at = first_at
        try:
            while next_at < end_at and not self.stop.is_set():
                wait = next_at - self.clock()
                if wait > 0 and self.stop.wait(wait):
                    break
                if not self.budget.take_op():
                    break
                if tab.kind is OpKind.READ:
                    self.read(tab, end_at)
                else:
                    self.write(tab, end_at)
                next_at = max(next_at + interval_s, self.clock())
        finally:
            tab.http.close()

    def pause(self, tab: Tab, tries: int, until: float) -> bool:
        """Sleep the backoff for try number `tries` (jittered); False if that passes `until`."""
        steps = self.settings.backoff_s
        pause = steps[min(tries, len(steps) - 1)] * tab.rng.uniform(0.8, 1.2)
        if self.clock() + pause > until:
            return False
        return not self.stop.wait(pause)

    # -- DNS -----------------------------------------------------------------------------

    def current_address(self) -> str | None:
        if self.target.address is not None:
            return self.target.address
        with self.dns_lock:
            now = self.clock()
            if (self.address is None or now >= self.expires) and now >= self.dns_retry_at:
                self.resolve(now)
            return self.address

    def resolve(self, now: float) -> None:
        target = self.target
        try:
            query = DNSRecord.question(target.name, "A")
            reply = DNSRecord.parse(
                query.send(target.dns_host, target.dns_port, timeout=self.settings.dns_timeout_s)
            )
            answers = [rr for rr in reply.rr if rr.rtype == QTYPE.A]
            if reply.header.rcode != RCODE.NOERROR or not answers:
                raise ValueError(f"answer {RCODE[reply.header.rcode]} with no address")
        except (OSError, ValueError, DNSError) as exc:  # a timeout is an OSError
            self.log.resolutions.append(
                Resolution(now, self.index, None, None, None, f"{type(exc).__name__}: {exc}")
            )
            self.dns_retry_at = now + 1.0  # the old answer, if any, serves meanwhile
            return
        address, ttl = str(answers[0].rdata), int(answers[0].ttl)
        # the first answer has a random age, as in a steady population of browsers
        lifetime = self.rng.uniform(0, ttl) if self.address is None else ttl
        self.address, self.expires = address, now + lifetime
        region = target.regions.get(address)
        self.log.resolutions.append(Resolution(now, self.index, region, address, ttl))

    # -- one request ---------------------------------------------------------------------

    def attempt(
        self, tab: Tab, op: OpKind, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[str, httpx.Response | None]:
        """Send one request; record it; its outcome and, when one came, the answer."""
        if not self.budget.take_request():
            self.stop.set()
            return CAPPED, None
        address = self.current_address()
        sent = self.clock()
        if address is None:
            self.record(sent, None, op, "no DNS answer", None)
            return "no DNS answer", None
        headers = {"Host": self.target.name, "Accept": "application/json"}
        token = self.min_lsn
        if token is not None:
            headers["Cookie"] = f"geoha_min_lsn={token}"
        url = f"http://{address}:{self.target.http_port}{path}"
        response: httpx.Response | None = None
        detail: str | None = None
        try:
            response = tab.http.request(method, url, headers=headers, json=body)
            outcome = classify_answer(response.status_code, response.content)
            if outcome != OK:
                detail = error_detail(response.status_code, response.content)
        except httpx.TransportError as exc:
            outcome, detail = classify_error(exc), f"{type(exc).__name__}: {exc}"[:200]
        self.record(sent, self.target.regions.get(address, address), op, outcome, detail)
        if response is not None and outcome == OK and "x-commit-lsn" in response.headers:
            self.min_lsn = response.headers["x-commit-lsn"]
        return outcome, response

    def record(
        self, sent: float, region: str | None, op: OpKind, outcome: str, detail: str | None
    ) -> None:
        done = self.clock()
        self.log.attempts.append(Attempt(sent, done, self.index, region, op, outcome, detail))

    # -- operations ----------------------------------------------------------------------

    def read(self, tab: Tab, end_at: float) -> None:
        """The newest themes, or this client's latest one; retried with backoff."""
        own = self.last_id is not None and tab.rng.random() < 0.5
        path = f"/api/v1/themes/{self.last_id}" if own else "/api/v1/themes?limit=20"
        for tries in range(self.settings.read_tries):
            outcome, _ = self.attempt(tab, OpKind.READ, "GET", path)
            if outcome in (OK, CAPPED) or not self.pause(
                tab, tries, end_at + self.settings.grace_s
            ):
                return

    def write(self, tab: Tab, end_at: float) -> None:
        """Create one theme under a new name; decide its outcome (see the module's docstring)."""
        self.writes_sent += 1
        name = f"drill-{self.tag}-c{self.index}-{self.writes_sent}"
        first_sent, first_wall = self.clock(), time.time()
        deadline = min(first_sent + self.settings.write_deadline_s, end_at + self.settings.grace_s)
        known = WriteOutcome.FAILED  # what the client knows: nothing written so far
        tries = 0
        while True:
            tries += 1
            outcome, response = self.attempt(
                tab, OpKind.WRITE, "POST", "/api/v1/themes", {"name": name, "config": {}}
            )
            if outcome == OK and response is not None:
                theme_id = int(response.json()["id"])
                return self.acked(name, first_sent, tries, AckedBy.CREATED, theme_id)
            if outcome == CAPPED or outcome.startswith("4"):
                break  # a 4xx refused the write as it is: nothing was written
            if outcome not in NOT_SENT:  # it may have been written: look before sending again
                decided, found = self.read_back(tab, name, first_wall, deadline)
                if found is not None:
                    return self.acked(name, first_sent, tries, AckedBy.READ_BACK, found)
                if not decided:
                    known = WriteOutcome.UNKNOWN
                    break
            if not self.pause(tab, tries - 1, deadline):
                break
        self.log.writes.append(WriteRecord(name, self.index, first_sent, known, attempts=tries))

    def acked(self, name: str, first_sent: float, tries: int, by: AckedBy, theme_id: int) -> None:
        self.last_id = theme_id
        record = WriteRecord(
            name, self.index, first_sent, WriteOutcome.ACKED, self.clock(), by, theme_id, tries
        )
        self.log.writes.append(record)

    def read_back(
        self, tab: Tab, name: str, since_wall: float, deadline: float
    ) -> tuple[bool, int | None]:
        """Whether the list could tell, and the theme's id if it holds `name`."""
        cursor: str | None = None
        for _ in range(self.settings.readback_pages):
            query = "limit=100" + (f"&cursor={cursor}" if cursor else "")
            page = self.fetch_page(tab, f"/api/v1/themes?{query}", deadline)
            if page is None:
                return False, None
            items: list[dict[str, Any]] = page["items"]
            for item in items:
                if item["name"] == name:
                    return True, int(item["id"])
            cursor = page["next_cursor"]
            if cursor is None or not items:
                return True, None
            oldest = datetime.fromisoformat(items[-1]["created_at"]).timestamp()
            if oldest < since_wall - self.settings.readback_window_s:
                return True, None
        return False, None

    def fetch_page(self, tab: Tab, path: str, deadline: float) -> dict[str, Any] | None:
        tries = 0
        while True:
            outcome, response = self.attempt(tab, OpKind.READBACK, "GET", path)
            if outcome == OK and response is not None:
                try:
                    page: dict[str, Any] = response.json()
                    return page
                except ValueError:
                    pass
            if outcome == CAPPED or not self.pause(tab, tries, deadline):
                return None
            tries += 1


def client_count(rate: float, data_regions: int) -> int:
    """Several clients per data region, more for a higher rate (a few requests/s each)."""
    return min(32, max(4 * data_regions, math.ceil(rate / 4)))


class Load:
    """The drill's clients: `rate` operations per second in all (`read_share` of them reads)
    for `duration_s`."""

    def __init__(
        self,
        target: Target,
        rate: float,
        duration_s: float,
        clock: Clock,
        *,
        seed: int,
        tag: str,
        settings: ClientSettings | None = None,
    ) -> None:
        self.settings = settings or ClientSettings()
        self.rate = rate
        self.duration_s = duration_s
        self.clock = clock
        self.stop = threading.Event()
        count = client_count(rate, len(set(target.regions.values())))
        self.budget = Budget(
            ops=math.ceil(rate * duration_s * 1.1) + 2 * count,
            requests=math.ceil(rate * (duration_s + self.settings.grace_s) * 3) + 100,
        )
        shared = Shared(target, self.settings, clock, self.budget, self.stop, tag)
        self.clients = [BrowserClient(i, shared, seed + i) for i in range(count)]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        count, share = len(self.clients), self.settings.read_share
        rates = {OpKind.READ: self.rate * share, OpKind.WRITE: self.rate * (1 - share)}
        intervals = {kind: count / rate for kind, rate in rates.items() if rate > 0}
        now = self.clock()
        end_at = now + self.duration_s
        for client in self.clients:
            for kind, tab in client.tabs.items():
                if kind not in intervals:  # a read share of 0 or 1: the tab has nothing to do
                    tab.http.close()
                    continue
                offset = (client.index + (0.5 if kind is OpKind.WRITE else 0.0)) / count
                thread = threading.Thread(
                    target=client.run,
                    args=(tab, now + intervals[kind] * offset, intervals[kind], end_at),
                    name=f"drill-client-{client.index}-{kind.value}",
                    daemon=True,
                )
                thread.start()
                self.threads.append(thread)

    def join(self, timeout_s: float) -> bool:
        """Wait for every client to finish; False if some still run after `timeout_s`."""
        deadline = self.clock() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - self.clock()))
        return not any(t.is_alive() for t in self.threads)

    def halt(self) -> None:
        """Stop every client at its next pause (an interrupted drill)."""
        self.stop.set()

    def attempts(self) -> list[Attempt]:
        return sorted((a for c in self.clients for a in list(c.log.attempts)), key=lambda a: a.done)

    def resolutions(self) -> list[Resolution]:
        return sorted((r for c in self.clients for r in list(c.log.resolutions)), key=lambda r: r.t)

    def writes(self) -> list[WriteRecord]:
        return sorted(
            (w for c in self.clients for w in list(c.log.writes)), key=lambda w: w.first_sent
        )
