"""The cloud plan and the VMs it maps to.

The cloud plan is `expand(spec, CLOUD_RUN_DIR, CLOUD_TOOLS, cloud=True)`: the
same nodes as locally, laid out in each region's CIDR, with the paths of a
Debian/Ubuntu VM. Its addresses are *slots*: E2E cannot pin a private address,
so every VM swaps the slots in its configs for real addresses at boot (see
geoha.cloud.boot_addresses). Two plan nodes share a VM in the cloud: a data
region's database node and its etcd member.

One adjustment is made to the plan, because E2E's managed load balancers listen
on fixed ports: the backend LB's HTTP port becomes 80 (what web instances proxy
to), as the frontend LB's already are.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from geoha.plan import Node, NodeRole, Plan, Tools, expand
from geoha.spec import Spec

CLOUD_RUN_DIR = Path("/var/lib/geoha")
CLOUD_TOOLS = Tools(
    patroni="/opt/geoha/venv/bin/patroni",
    etcd="/usr/bin/etcd",
    pg_bin_dir="/usr/lib/postgresql/15/bin",
    haproxy="/usr/sbin/haproxy",
    caddy="/usr/bin/caddy",
    python="/opt/geoha/venv/bin/python",
    web_dist="/var/www/geoha",
)
E2E_LB_HTTP_PORT = 80
"""The port an E2E load balancer in HTTP mode listens on."""


class VmKind(StrEnum):
    DATABASE = "database"  # PostgreSQL + Patroni + the region's etcd member
    WITNESS = "etcd"  # etcd only (a witness region)
    WEB = "web"  # template of the web scaler group's saved image
    API = "api"  # template of the API scaler group's saved image


@dataclass(frozen=True)
class Vm:
    """One machine E2E runs: a fixed node, or the template of a scaler group's image."""

    name: str
    region: str
    kind: VmKind
    nodes: tuple[Node, ...]
    """Plan nodes whose configs and services this VM carries (their slots are 'self')."""

    @property
    def template(self) -> bool:
        """Whether this VM only exists to be saved as a scaler group's image."""
        return self.kind in (VmKind.WEB, VmKind.API)


def cloud_plan(spec: Spec) -> Plan:
    """The plan the cloud outputs are rendered from."""
    plan = expand(spec, CLOUD_RUN_DIR, CLOUD_TOOLS, cloud=True)
    nodes = tuple(cloud_node(spec, n) for n in plan.nodes)
    return dataclasses.replace(plan, nodes=nodes)


def cloud_node(spec: Spec, node: Node) -> Node:
    """A plan node as the cloud runs it. With an etcd member across the internet
    (`internet_witnesses`), every member is dialled by its internal name, which each VM
    resolves for itself (/etc/hosts, geoha.cloud.boot_addresses): a peer's private
    address inside E2E, its public one from the witness. The members must agree on the
    URLs (etcd derives member IDs from them), not on the addresses behind them. A data
    region's member then listens on every address, as the witness reaches it through its
    VM's public one."""
    if node.role is NodeRole.BACKEND_LB:
        return dataclasses.replace(node, ports={**node.ports, "http": E2E_LB_HTTP_PORT})
    if node.role is NodeRole.ETCD and internet_witnesses(spec):
        listen = "0.0.0.0" if spec.regions[node.region].is_data else None
        return dataclasses.replace(node, host=internal_name(spec, node.name), listen=listen)
    return node


def internet_witnesses(spec: Spec) -> list[str]:
    """Witness regions on AWS: their etcd member talks to the data regions' over the
    internet, with mutual TLS."""
    return [name for name, region in spec.regions.items() if region.cloud.on_aws]


def region_location(spec: Spec, region: str) -> str:
    """E2E location of a region (`cloud.location`, default the name capitalised)."""
    return spec.regions[region].cloud.location or region.capitalize()


E2E_LOCATIONS = ("Delhi", "Chennai", "Mumbai", "Delhi-NCR-2")
"""Every location E2E's sources name: its API reference (Delhi, Chennai; Mumbai
discontinued) and the provider's node source (Delhi, Mumbai, Delhi-NCR-2 in one 2.x
version). docs/PROVIDER.md says which the pinned provider passes through unchecked."""


def location_errors(spec: Spec) -> list[str]:
    """One line per region on E2E whose location no E2E source names (a typo, or a default
    taken from a region name that is no E2E location): the apply would fail at E2E."""
    errors = []
    for region in e2e_regions(spec):
        location = region_location(spec, region)
        if location not in E2E_LOCATIONS:
            given = "set" if spec.regions[region].cloud.location else "the region's name"
            errors.append(
                f"regions.{region}.cloud.location: {location!r} ({given}) is no E2E location: "
                f"expected one of {', '.join(E2E_LOCATIONS)} (Delhi and Chennai are those "
                "E2E's API reference lists), or run the region outside E2E (cloud.external, "
                "witness regions only)"
            )
    return errors


def e2e_regions(spec: Spec) -> list[str]:
    """Regions whose VMs run on E2E (all but witnesses on AWS or marked `cloud.external`)."""
    return [name for name, region in spec.regions.items() if region.cloud.on_e2e]


def on_e2e(spec: Spec, vm: Vm) -> bool:
    return spec.regions[vm.region].cloud.on_e2e


def watcher_region(spec: Spec) -> str | None:
    """The region whose witness VM runs the fast failover watcher: the witness, when it is on
    E2E (the watcher powers database VMs off through E2E's API) and the fast path is on."""
    if not spec.fast_failover:
        return None
    witnesses = [n for n, r in spec.regions.items() if not r.is_data and r.cloud.on_e2e]
    return witnesses[0] if witnesses else None


def witness_address_variable(region: str) -> str:
    """Terraform variable holding the private address of an external witness's VM."""
    return f"witness_address_{region.replace('-', '_')}"


def network_variable(region: str) -> str:
    """Template variable holding the network E2E gave a region's VPC (`network_delhi`)."""
    return f"network_{region.replace('-', '_')}"


NAME_SERVERS_VARIABLE = "internal_name_servers"
"""Template variable holding the internal hosted zone's name servers, space-separated."""


def cloud_vms(plan: Plan) -> list[Vm]:
    """Every VM of the deployment, data regions first, in spec order."""
    vms: list[Vm] = []
    for region in plan.spec.data_regions:
        db = plan.only(region, NodeRole.DATABASE)
        etcd = plan.only(region, NodeRole.ETCD)
        web = plan.in_region(region, NodeRole.WEB)[0]
        api = plan.in_region(region, NodeRole.API)[0]
        vms += [
            Vm(db.name, region, VmKind.DATABASE, (db, etcd)),
            Vm(f"{region}-web", region, VmKind.WEB, (web,)),
            Vm(f"{region}-api", region, VmKind.API, (api,)),
        ]
    for region, spec_region in plan.spec.regions.items():
        if not spec_region.is_data:
            etcd = plan.only(region, NodeRole.ETCD)
            vms.append(Vm(etcd.name, region, VmKind.WITNESS, (etcd,)))
    return vms


def internal_name(spec: Spec, node_name: str) -> str:
    """DNS name Terraform points at a fixed node's (or backend LB's) private address (an
    AWS witness's public one: nothing reaches it privately)."""
    return f"{node_name}.internal.{spec.dns.zone}"


def public_name(spec: Spec, vm_name: str) -> str:
    """DNS name Terraform points at a database VM's public address, for a witness across
    the internet."""
    return f"{vm_name}.public.internal.{spec.dns.zone}"


def addressed_nodes(plan: Plan) -> list[Node]:
    """Nodes other VMs may reach by slot: database and etcd nodes, backend LBs."""
    roles = (NodeRole.DATABASE, NodeRole.ETCD, NodeRole.BACKEND_LB)
    return [n for n in plan.nodes if n.role in roles]


def slot_in(text: str, address: str) -> bool:
    """Whether the whole address appears in the text (not as part of a longer one)."""
    return re.search(rf"(?<![\w.]){re.escape(address)}(?!\w)", text) is not None


def vpc_network(plan: Plan, region: str) -> str:
    return str(ipaddress.IPv4Network(plan.spec.regions[region].cidr))
