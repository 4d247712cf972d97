"""Where browser-like clients reach the running deployment: the Target that `geoha drill` and
`geoha load` give their clients (geoha.ops.drill_clients)."""

from __future__ import annotations

from geoha.ops.drill_clients import Target
from geoha.plan import NodeRole, Plan
from geoha.runtime.events import ControllerStatus
from geoha.runtime.global_dns import entry_addresses


def client_target(plan: Plan, snap: ControllerStatus, region: str | None = None) -> Target:
    """The application's name at the controller's DNS server, every data region's entry; with
    `region`, that region's entry as a fixed address (no DNS lookup)."""
    host, _, port = snap["dns"]["server"].rpartition(":")
    entries = entry_addresses(plan)
    http_port = plan.only(region or next(iter(entries)), NodeRole.FRONTEND_LB).ports["http"]
    return Target(
        name=snap["dns"]["name"],
        dns_host=host,
        dns_port=int(port),
        http_port=http_port,
        regions={address: name for name, address in entries.items()},
        address=None if region is None else entries[region],
    )
