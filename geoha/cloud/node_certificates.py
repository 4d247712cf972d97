"""geoha-certificates: a cloud VM's certificates, issued at boot for its real address.

E2E gives a VM its private address only once the VM exists, and its start
script is fixed before that; so a certificate naming the address cannot come
from Terraform. Instead the VMs that serve internal TLS (database and witness
VMs) receive the deployment's CA key through a sensitive Terraform variable,
as they receive the database passwords, and sign their own certificates at
every boot, after geoha-addresses has put the real address into each
identity file:

    # one certificate per file, /etc/geoha/certificates/NAME.identity
    cert PATH          where the certificate goes (0644)
    key PATH           where its key goes (0600)
    owner USER         who owns both (the user of the service that serves with it)
    name DNS-NAME      zero or more: names it holds
    address IP         zero or more: addresses it holds (a slot, made real at boot)
    usage server client   what it is good for (either or both)

A certificate already there that still names exactly these, from this CA, with
more than RENEW_BEFORE_DAYS left is kept, so a reboot with the same address
changes nothing. Run as root by geoha-certificates.service, after
geoha-addresses.service and before the services that use the certificates.
"""

from __future__ import annotations

import os
import pwd
import sys
from dataclasses import dataclass
from pathlib import Path

from geoha.render.files import File, write_files
from geoha.traffic.tls import issue, load_ca, valid_for

IDENTITY_DIR = Path("/etc/geoha/certificates")
CA_KEY = Path("/etc/geoha/tls/ca.key")
USAGES = ("server", "client")


@dataclass(frozen=True)
class Identity:
    """What one certificate names, where it goes and whose it is."""

    cert: Path
    key: Path
    owner: str
    names: tuple[str, ...]
    addresses: tuple[str, ...]
    usages: frozenset[str]

    @property
    def label(self) -> str:
        """What its identity file is named after."""
        return (self.names or self.addresses)[0]

    def render(self) -> str:
        lines = ["# rendered by geoha: the certificate geoha-certificates issues at boot"]
        lines += [f"cert {self.cert}", f"key {self.key}", f"owner {self.owner}"]
        lines += [f"name {n}" for n in self.names]
        lines += [f"address {a}" for a in self.addresses]
        lines.append("usage " + " ".join(u for u in USAGES if u in self.usages))
        return "\n".join(lines) + "\n"


def parse_identity(text: str, where: str) -> Identity:
    """An identity file; ValueError naming `where` and the line that is wrong."""
    single: dict[str, str] = {}
    names: list[str] = []
    addresses: list[str] = []
    usages: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        kind, values = fields[0], fields[1:]
        if kind in ("cert", "key", "owner") and len(values) == 1 and kind not in single:
            single[kind] = values[0]
        elif kind == "name" and len(values) == 1:
            names.append(values[0])
        elif kind == "address" and len(values) == 1:
            addresses.append(values[0])
        elif kind == "usage" and values and set(values) <= set(USAGES):
            usages |= set(values)
        else:
            raise ValueError(f"{where}:{number}: not an identity line: {line!r}")
    missing = [k for k in ("cert", "key", "owner") if k not in single]
    if missing or not usages or not (names or addresses):
        what = ", ".join(missing) or ("usage" if not usages else "a name or an address")
        raise ValueError(f"{where}: missing {what}")
    return Identity(
        Path(single["cert"]),
        Path(single["key"]),
        single["owner"],
        tuple(names),
        tuple(addresses),
        frozenset(usages),
    )


def ensure(identity: Identity, ca_cert: Path, ca_key: Path) -> bool:
    """Issue the identity's certificate unless a good one is there; True if issued."""
    names, addresses = list(identity.names), list(identity.addresses)
    if valid_for(identity.cert, identity.key, ca_cert, names, addresses):
        return False
    user = pwd.getpwnam(identity.owner)
    owner = (user.pw_uid, user.pw_gid)
    cert, key = issue(
        load_ca(ca_cert, ca_key),
        names,
        addresses,
        server="server" in identity.usages,
        client="client" in identity.usages,
    )
    folder = identity.cert.parent
    if not folder.exists():  # a folder of its own; one that exists keeps its owner
        folder.mkdir(mode=0o700, parents=True)
        os.chown(folder, *owner)
    write_files([File(identity.key, key, 0o600), File(identity.cert, cert, 0o644)], owner)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m geoha.cloud.node_certificates CA_CERTIFICATE", file=sys.stderr)
        return 2
    ca_cert = Path(argv[0])
    failed = 0
    for path in sorted(IDENTITY_DIR.glob("*.identity")):
        try:
            identity = parse_identity(path.read_text(encoding="utf-8"), str(path))
            issued = ensure(identity, ca_cert, CA_KEY)
        except (OSError, ValueError, KeyError) as exc:
            print(f"geoha-certificates: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        state = "issued" if issued else "still good"
        print(f"geoha-certificates: {identity.cert}: {state}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
