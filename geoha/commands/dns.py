"""`geoha dns`: the local global DNS as the controller runs it, and `geoha dns resolve`."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TypedDict

from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]

from geoha.commands.common import load, print_table, say
from geoha.commands.controller_view import controller_snapshot
from geoha.errors import EXIT_OK, BadInput, GeohaError
from geoha.plan import Plan
from geoha.runtime.global_dns import DnsRecordStatus, DnsStatus, entry_addresses

MAX_QUERIES = 10_000
QUERY_TIMEOUT_S = 2.0


class ResolveReport(TypedDict):
    server: str
    name: str
    queries: int
    answers: dict[str, int]
    """Per region (or the address, when it is no region's entry); "error" for failed queries."""
    share: dict[str, float]


def dns_status(plan: Plan) -> DnsStatus:
    snap = controller_snapshot(plan)
    if snap is None:
        raise GeohaError("no controller is running: the DNS server runs inside it (`geoha up`)")
    return snap["dns"]


def resolve(server: str, name: str, count: int, regions: dict[str, str]) -> ResolveReport:
    """Ask `server` for `name` `count` times over UDP; count the answers per region."""
    host, _, port = server.rpartition(":")
    answers: Counter[str] = Counter()
    for _ in range(count):
        try:
            reply = DNSRecord.parse(
                DNSRecord.question(name, "A").send(host, int(port), timeout=QUERY_TIMEOUT_S)
            )
        except (OSError, ValueError) as exc:  # timeouts are OSErrors
            answers[f"error: {type(exc).__name__}"] += 1
            continue
        addresses = [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A]
        if reply.header.rcode != RCODE.NOERROR or not addresses:
            answers[f"error: {RCODE[reply.header.rcode]}"] += 1
            continue
        answers[regions.get(addresses[0], addresses[0])] += 1
    return {
        "server": server,
        "name": name,
        "queries": count,
        "answers": dict(answers),
        "share": {k: round(v / count, 4) for k, v in answers.items()},
    }


def health_word(record: DnsRecordStatus, threshold: int) -> str:
    """yes; NO; or, while passes are adding up to the threshold (at start-up, or a region
    recovering), "not yet (P/T passes)"."""
    if record["healthy"]:
        return "yes"
    passes = record["consecutive_successes"]
    if record["consecutive_failures"] == 0 and 0 < passes < threshold:
        return f"not yet ({passes}/{threshold} passes)"
    return "NO"


def cmd_dns(args: argparse.Namespace) -> int:
    _, plan = load(args)
    status = dns_status(plan)
    if args.action == "resolve":
        if not 1 <= args.count <= MAX_QUERIES:
            raise BadInput(f"--count: 1 to {MAX_QUERIES} (got {args.count})")
        regions = {address: region for region, address in entry_addresses(plan).items()}
        report = resolve(status["server"], status["name"], args.count, regions)
        if args.json:
            print(json.dumps(report, indent=2))
            return EXIT_OK
        say(f"{report['queries']} queries for {report['name']} at {report['server']}:")
        for who, n in sorted(report["answers"].items()):
            say(f"  {who:<12} {n:>6}  {report['share'][who]:7.1%}")
        return EXIT_OK
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    state = "serving" if status["running"] else f"NOT SERVING ({status['error']})"
    say(f"dns server {status['server']} {state}: zone {status['zone']}, name {status['name']}")
    say(
        f"  ttl {status['ttl']} s; health checks every {status['interval_s']} s, "
        f"{status['failure_threshold']} in a row to change a region's health; "
        "every region unhealthy -> answers as if all were healthy (fail-open)"
    )
    print_table(
        ["REGION", "ADDRESS", "WEIGHT", "HEALTHY", "FAILS", "PASSES", "LAST CHECK", "ANSWERS"],
        [
            [
                r["region"],
                r["address"],
                r["weight"],
                health_word(r, status["failure_threshold"]),
                r["consecutive_failures"],
                r["consecutive_successes"],
                r["last_check"],
                r["answers"],
            ]
            for r in status["records"]
        ],
    )
    if status["recent"]:
        say("last answers:")
        for a in status["recent"][-5:]:
            say(f"  {a['client']} {a['qname']} {a['qtype']} -> {a['rcode']} {a['address'] or ''}")
    host, _, port = status["server"].rpartition(":")
    say(f"try: dig @{host} -p {port} {status['name']}   or   geoha dns resolve --count 100")
    return EXIT_OK
