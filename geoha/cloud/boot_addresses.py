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
    net CIDR             the region network, to pick the own address

Names that do not resolve yet are retried until they do.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAP_FILE = Path("/etc/geoha/addresses.map")
RENDERED = Path("/etc/geoha/rendered")
RETRY_S = 5.0


def parse_map(text: str) -> dict[str, list[list[str]]]:
    """Map lines by kind: {'self': [[slot]], 'peer': [[slot, name]], ...}."""
    entries: dict[str, list[list[str]]] = {"self": [], "peer": [], "name": [], "net": []}
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


def resolve(name: str) -> str:
    """IPv4 address of `name`, waiting until it resolves."""
    waited = 0.0
    while True:
        try:
            return str(socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0])
        except OSError:
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


def replacements(entries: dict[str, list[list[str]]], own: str) -> dict[str, str]:
    result = {slot: own for (slot,) in entries["self"]}
    result.update({slot: resolve(name) for slot, name in entries["peer"]})
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


def apply(entries: dict[str, list[list[str]]], own: str, rendered: Path, root: Path) -> list[Path]:
    """Write the live copy (under `root`) of every pristine file under `rendered`."""
    mapping = replacements(entries, own)
    written = []
    for source in sorted(p for p in rendered.rglob("*") if p.is_file()):
        target = root / source.relative_to(rendered)
        write_live(source, target, substitute(source.read_text(encoding="utf-8"), mapping))
        written.append(target)
    return written


def main() -> int:
    entries = parse_map(MAP_FILE.read_text(encoding="utf-8"))
    own = own_address(entries["net"][0][0], local_addresses())
    for target in apply(entries, own, RENDERED, Path("/")):
        print(f"geoha-addresses: wrote {target} for {own}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
