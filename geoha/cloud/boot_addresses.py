"""geoha-addresses: put a cloud VM's real addresses into its configs, at every boot.

This module is copied verbatim onto every VM as /usr/local/sbin/geoha-addresses
(standard library only, run by the system python3). Why it exists: the E2E
provider cannot pin a node's private address, and scaler-group instances get
whatever address their VPC hands out. So the configs are rendered with the
plan's layout addresses ("slots", e.g. 10.10.5.1 for delhi-db) and kept
pristine under /etc/geoha/rendered/; at boot this script writes the live copy
of each (same path without the prefix, same owner and mode) with every slot
replaced by a real address:

    self SLOT            this VM's own address in the region network
    peer SLOT NAME       the IPv4 address NAME resolves to (a Route 53 record
                         Terraform keeps pointed at that node or load balancer)
    name TOKEN PREFIX    TOKEN becomes PREFIX-<own address, dots as dashes>
                         (gives each scaler-group API instance its own name)
    net LAYOUT [REAL]    the region network: the own address is picked in
                         REAL (the network E2E gave the region's VPC), or in
                         LAYOUT when the two are the same
    cidr LAYOUT REAL     a region's layout network, where a config names it
                         (pg_hba rules), becomes the network E2E gave it
    dns SERVER...        peers' names are asked of these name servers (the
                         module's internal hosted zone, which is delegated
                         from nowhere), not of the VM's resolver
    host NAME SOURCE     /etc/hosts maps NAME to this VM's own address (SOURCE
                         `self`) or to the address SOURCE resolves to: names
                         the configs dial, each VM resolving them its own way
                         (an etcd member across the internet)

Names that do not resolve yet are retried until they do. The /etc/hosts lines
live between two marker lines, replaced at every boot; the rest of the file is
kept.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAP_FILE = Path("/etc/geoha/addresses.map")
HOSTS = Path("etc/hosts")
HOSTS_BEGIN = "# geoha-addresses: begin (rewritten at every boot)"
HOSTS_END = "# geoha-addresses: end"
RENDERED = Path("/etc/geoha/rendered")
RETRY_S = 5.0
DNS_TIMEOUT_S = 3.0
KINDS = ("self", "peer", "name", "net", "cidr", "dns", "host")


def parse_map(text: str) -> dict[str, list[list[str]]]:
    """Map lines by kind: {'self': [[slot]], 'peer': [[slot, name]], ...}."""
    entries: dict[str, list[list[str]]] = {kind: [] for kind in KINDS}
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] not in entries:
            raise ValueError(f"unknown map line: {line!r}")
        entries[fields[0]].append(fields[1:])
    return entries


def own_address(network: str, addresses: list[str]) -> str:
    """The first of this machine's addresses inside the region network."""
    net = ipaddress.IPv4Network(network)
    for address in addresses:
        if ipaddress.IPv4Address(address) in net:
            return address
    raise LookupError(f"no address of this machine in {network} (have {addresses})")


def local_addresses() -> list[str]:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


def dns_query(name: str) -> bytes:
    """A DNS query for the A record of `name` (RFC 1035), recursion not desired."""
    header = struct.pack(">HHHHHH", random.randrange(65536), 0, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack(">HH", 1, 1)


def skip_name(message: bytes, offset: int) -> int:
    """The offset just past a (possibly compressed) name; IndexError past the end."""
    while True:
        length = message[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def a_records(query: bytes, message: bytes) -> list[str]:
    """The A records of a complete answer to `query`; an empty list for anything else (an
    error, a truncated or malformed answer, an answer to another question)."""
    message, question = bytes(message), query[12:]
    if len(message) < 12 + len(question) or message[:2] != query[:2]:
        return []
    _, flags, questions, answers = struct.unpack(">HHHH", message[:8])
    if not flags & 0x8000 or flags & 0x0200 or flags & 0x000F:  # not QR, TC set, an rcode
        return []
    if questions != 1 or message[12 : 12 + len(question)].lower() != question.lower():
        return []
    offset = 12 + len(question)
    found = []
    try:
        for _ in range(answers):
            offset = skip_name(message, offset)
            kind, klass, _ttl, length = struct.unpack(">HHIH", message[offset : offset + 10])
            offset += 10
            if offset + length > len(message):
                return []
            if kind == 1 and klass == 1 and length == 4:
                found.append(str(ipaddress.IPv4Address(message[offset : offset + 4])))
            offset += length
    except (IndexError, struct.error, ValueError):
        return []
    return found


def ask(server: str, name: str, port: int = 53) -> str | None:
    """The first A record of `name` from one name server, or None."""
    query = dns_query(name)
    try:
        address = socket.getaddrinfo(server, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(DNS_TIMEOUT_S)
            sock.connect((address, port))  # only the server's answers come back
            sock.send(query)
            records = a_records(query, sock.recv(4096))
    except (OSError, IndexError, ValueError):
        return None
    return records[0] if records else None


def lookup(name: str, servers: list[str]) -> str | None:
    """From the given name servers (the first that answers), else the VM's resolver."""
    if servers:
        return next((a for a in (ask(s, name) for s in servers) if a), None)
    try:
        return str(socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0])
    except OSError:
        return None


def resolve(name: str, servers: list[str]) -> str:
    """IPv4 address of `name`, waiting until it resolves."""
    waited = 0.0
    while True:
        address = lookup(name, servers)
        if address is not None:
            return address
        if waited % 60 == 0:
            print(f"geoha-addresses: waiting for {name} to resolve", file=sys.stderr)
        time.sleep(RETRY_S)
        waited += RETRY_S


def substitute(text: str, replacements: dict[str, str]) -> str:
    """Replace whole addresses and tokens only (10.10.5.1 never matches inside 10.10.5.10)."""
    if not replacements:
        return text
    keys = sorted(replacements, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w])")
    return pattern.sub(lambda m: replacements[m.group(1)], text)


def name_servers(entries: dict[str, list[list[str]]]) -> list[str]:
    return [server for line in entries["dns"] for server in line]


def replacements(entries: dict[str, list[list[str]]], own: str) -> dict[str, str]:
    servers = name_servers(entries)
    result = {slot: own for (slot,) in entries["self"]}
    result.update({layout: real for layout, real in entries["cidr"] if layout != real})
    result.update({slot: resolve(name, servers) for slot, name in entries["peer"]})
    result.update({token: f"{prefix}-{own.replace('.', '-')}" for token, prefix in entries["name"]})
    return result


def write_live(source: Path, target: Path, text: str) -> None:
    """Atomically write `target` with `source`'s owner and mode."""
    info = source.stat()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chown(tmp, info.st_uid, info.st_gid)
        os.chmod(tmp, info.st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def host_lines(entries: dict[str, list[list[str]]], own: str) -> list[str]:
    """`ADDRESS NAME` for every `host` line of the map."""
    servers = name_servers(entries)
    return [
        f"{own if source == 'self' else resolve(source, servers)} {name}"
        for name, source in entries["host"]
    ]


def with_hosts(text: str, lines: list[str]) -> str:
    """An /etc/hosts text with geoha's block (between the markers) replaced by `lines`."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line in (HOSTS_BEGIN, HOSTS_END):
            inside = line == HOSTS_BEGIN
            continue
        if not inside:
            kept.append(line)
    block = [HOSTS_BEGIN, *lines, HOSTS_END] if lines else []
    return "\n".join(kept + block) + "\n"


def apply(entries: dict[str, list[list[str]]], own: str, rendered: Path, root: Path) -> list[Path]:
    """Write the live copy (under `root`) of every pristine file under `rendered`, and
    geoha's block of /etc/hosts."""
    mapping = replacements(entries, own)
    written = []
    for source in sorted(p for p in rendered.rglob("*") if p.is_file()):
        target = root / source.relative_to(rendered)
        write_live(source, target, substitute(source.read_text(encoding="utf-8"), mapping))
        written.append(target)
    hosts = root / HOSTS
    lines = host_lines(entries, own)
    if lines:
        if not hosts.exists():
            hosts.parent.mkdir(parents=True, exist_ok=True)
            hosts.write_text("127.0.0.1 localhost\n", encoding="utf-8")
            hosts.chmod(0o644)
        write_live(hosts, hosts, with_hosts(hosts.read_text(encoding="utf-8"), lines))
        written.append(hosts)
    return written


def main() -> int:
    entries = parse_map(MAP_FILE.read_text(encoding="utf-8"))
    own = own_address(entries["net"][0][-1], local_addresses())
    for target in apply(entries, own, RENDERED, Path("/")):
        print(f"geoha-addresses: wrote {target} for {own}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
