"""What a running deployment listens on, against the documented table (docs/DESIGN.md,
"Security"): every listening socket of the deployment's processes, or on its addresses,
must be one the plan gives a node (or the DNS server and monitor) — nothing on a
wildcard address, no Caddy admin port, nothing unexpected."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from dataclasses import dataclass

import psutil
import pytest

from geoha.runtime.controller import controller_pid
from geoha.runtime.kinds import kinds
from geoha.runtime.process import node_processes, read_record
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


@dataclass(frozen=True)
class Listener:
    protocol: str  # "tcp" or "udp"
    address: str
    port: int
    pids: frozenset[int]

    def __str__(self) -> str:
        return f"{self.protocol} {self.address}:{self.port} (pids {sorted(self.pids)})"


def listeners() -> list[Listener]:
    """Every listening TCP and bound UDP socket on this machine (`ss -H -ltunp`)."""
    out = subprocess.run(
        ["ss", "-H", "-l", "-t", "-u", "-n", "-p"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        local = fields[4]
        address, _, port = local.rpartition(":")
        address = address.strip("[]").split("%")[0]
        pids = frozenset(int(p) for p in _pids(" ".join(fields[6:])))
        found.append(Listener(fields[0], address, int(port), pids))
    return found


def _pids(process_field: str) -> list[str]:
    return re.findall(r"pid=(\d+)", process_field)


def deployment_pids(dep: Deployment) -> set[int]:
    pids: set[int] = set()
    roles = kinds()
    for node in dep.plan.nodes:
        record = read_record(node.dir)
        if record is not None:  # with what leaves the group (a database's postmaster)
            extra = roles[node.role].extra_pids(node)
            pids |= {p.pid for p in node_processes(record, extra)}
    controller = controller_pid(dep.plan.run_dir)
    if controller is not None:
        pids.add(controller)
        pids |= {c.pid for c in psutil.Process(controller).children(recursive=True)}
    return pids


def expected(dep: Deployment) -> set[tuple[str, str, int]]:
    """(protocol, address, port) the documented table allows for this deployment."""
    spec = dep.plan.spec
    allowed = {("tcp", n.address, port) for n in dep.plan.nodes for port in n.ports.values()}
    dns_port = spec.dns.local_port if spec.dns.local_port is not None else 53
    allowed |= {
        ("tcp", spec.dns.local_address, dns_port),
        ("udp", spec.dns.local_address, dns_port),
    }
    allowed.add(("tcp", spec.monitor.local_address, spec.monitor.local_port))
    return allowed


def test_every_listener_is_a_documented_one(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    spec = dep.plan.spec
    nets = [spec.regions[r].loopback_net for r in spec.regions]
    ours = deployment_pids(dep)
    own_addresses = {spec.dns.local_address, spec.monitor.local_address}

    def is_ours(listener: Listener) -> bool:
        if listener.pids & ours:
            return True
        try:
            address = ipaddress.ip_address(listener.address)
        except ValueError:
            return False
        return listener.address in own_addresses or any(address in net for net in nets)

    found = [entry for entry in listeners() if is_ours(entry)]
    allowed = expected(dep)
    unexpected = [str(e) for e in found if (e.protocol, e.address, e.port) not in allowed]
    assert unexpected == []
    # The check saw the deployment: every running node's listeners, the DNS server's and
    # the monitor's (as root, `ss` names every process; otherwise only its user's).
    seen = {(e.protocol, e.address, e.port) for e in found}
    fe = dep.plan.node("delhi-fe")
    assert {("tcp", fe.address, p) for p in fe.ports.values()} <= seen
    db = dep.plan.node("delhi-db")
    assert {("tcp", db.address, p) for p in db.ports.values()} <= seen
    assert ("udp", spec.dns.local_address, spec.dns.local_port) in seen
    assert ("tcp", spec.monitor.local_address, spec.monitor.local_port) in seen
    if os.geteuid() == 0:  # `ss` names every process: nothing else listens on our addresses
        strangers = [str(e) for e in found if not e.pids or not e.pids <= ours]
        assert strangers == []


def test_caddy_has_no_admin_port_but_a_private_socket(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    for web in (n for n in dep.plan.nodes if n.role.value == "web" and not n.standby):
        socket_path = web.dir / "admin.sock"
        assert socket_path.is_socket(), web.name
        assert (web.dir.stat().st_mode & 0o777) == 0o700, web.name
    ports = {e.port for e in listeners()}
    assert 2019 not in ports
