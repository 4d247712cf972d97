"""Route 53 resources (provider `hashicorp/aws`): global DNS and the nodes' internal names.

- Per data region, an HTTPS health check of the frontend LB's health path
  (`dns.health_check_path`, by default `/health/full`: HTTPS listener -> a web
  instance -> backend LB -> API -> local database read) and a weighted A record of the zone's
  name with the spec's weight, TTL and that health check; plus `REGION.ZONE`
  pointing at the region's entry.
- A hosted zone of its own, `internal.ZONE`, delegated from nowhere, with an
  A record `NODE.internal.ZONE` for every node other VMs reach by slot
  (database, etcd, backend LB) at its private address. Each VM asks that
  zone's name servers directly at boot (geoha.cloud.boot_addresses): private
  addresses stay out of the public zone, and the zone needs no delegation (so
  a zone such as `geoha.test`, which nobody can delegate, works too).

A fixed VM's or backend LB's private address comes from its `data "external"`
lookup (geoha.cloud.e2e_api): the E2E provider records it only on its next
read of the resource, not when it creates it.
"""

from __future__ import annotations

from typing import Any

from geoha.cloud.terraform_e2e import (
    INTERNAL_ZONE,
    Resources,
    elastic_ip,
    public_address,
    tf_name,
)
from geoha.cloud.vms import (
    VmKind,
    cloud_vms,
    internal_name,
    internet_witnesses,
    on_e2e,
    public_name,
    witness_address_variable,
)
from geoha.plan import NodeRole, Plan
from geoha.spec import Spec

ROUTE53_INTERVALS_S = (10, 30)
"""The only request intervals Route 53 health checks accept."""
INTERNAL_TTL_S = 60
HEALTH_CHECK_PORT = 443
"""Route 53 checks each entry over HTTPS (it does not verify the certificate, but a
broken HTTPS listener fails the check), as users arrive once HTTP redirects."""


def route53_interval(interval_s: int) -> int:
    """The allowed Route 53 interval nearest the spec's (a tie goes to the faster, 10 s)."""
    return min(ROUTE53_INTERVALS_S, key=lambda allowed: (abs(allowed - interval_s), allowed))


def entry_ip(region: str) -> str:
    """The region's public entry: its frontend LB's address."""
    return f"${{e2e_loadbalancer.{tf_name(region, 'fe')}.public_ip}}"


def health_check(spec: Spec, region: str) -> dict[str, Any]:
    return {
        "type": "HTTPS",
        "ip_address": entry_ip(region),
        "fqdn": f"{region}.{spec.dns.zone}",
        "enable_sni": True,
        "port": HEALTH_CHECK_PORT,
        "resource_path": spec.dns.health_check_path,
        "request_interval": route53_interval(spec.dns.health_check_interval_s),
        "failure_threshold": spec.dns.failure_threshold,
        "tags": {"Name": f"{spec.name}-{region}"},
    }


def weighted_record(spec: Spec, region: str) -> dict[str, Any]:
    return {
        "zone_id": "${var.route53_zone_id}",
        "name": spec.dns.fqdn,
        "type": "A",
        "ttl": spec.dns.ttl_s,
        "records": [entry_ip(region)],
        "set_identifier": region,
        "weighted_routing_policy": [{"weight": spec.regions[region].dns.weight}],
        "health_check_id": f"${{aws_route53_health_check.{tf_name(region)}.id}}",
    }


def region_record(spec: Spec, region: str) -> dict[str, Any]:
    return {
        "zone_id": "${var.route53_zone_id}",
        "name": f"{region}.{spec.dns.zone}",
        "type": "A",
        "ttl": spec.dns.ttl_s,
        "records": [entry_ip(region)],
    }


def internal_zone(spec: Spec) -> dict[str, Any]:
    return {
        "name": f"internal.{spec.dns.zone}",
        "comment": f"geoha {spec.name}: private addresses of the nodes VMs reach by name; "
        "asked directly by the VMs, delegated from nowhere",
        "force_destroy": True,
    }


def internal_record(spec: Spec, node_name: str, address: str) -> dict[str, Any]:
    return {
        "zone_id": f"${{aws_route53_zone.{INTERNAL_ZONE}.zone_id}}",
        "name": internal_name(spec, node_name),
        "type": "A",
        "ttl": INTERNAL_TTL_S,
        "records": [address],
    }


def internal_records(plan: Plan) -> dict[str, dict[str, Any]]:
    """`NODE.internal.ZONE` for every database and etcd node (their VM's private address;
    an AWS witness's Elastic IP) and every backend LB (its private address, once it
    exists); with a witness across the internet, `VM.public.internal.ZONE` for every
    database VM (its public address, which only the witness asks for)."""
    spec = plan.spec
    records: dict[str, dict[str, Any]] = {}
    for vm in cloud_vms(plan):
        if vm.kind not in (VmKind.DATABASE, VmKind.WITNESS):
            continue
        cloud = spec.regions[vm.region].cloud
        if on_e2e(spec, vm):
            address = f"${{data.external.{tf_name(vm.name, 'address')}.result.private_ip}}"
        elif cloud.on_aws:  # nothing reaches it privately: its Elastic IP
            address = f"${{{elastic_ip(vm.region)}}}"
        else:
            address = f"${{var.{witness_address_variable(vm.region)}}}"
        for node in vm.nodes:
            records[tf_name(node.name, "internal")] = internal_record(spec, node.name, address)
        if vm.kind is VmKind.DATABASE and internet_witnesses(spec):
            public = internal_record(spec, vm.name, f"${{{public_address(vm.region)}}}")
            public["name"] = public_name(spec, vm.name)
            records[tf_name(vm.name, "public")] = public
    for lb in plan.by_role(NodeRole.BACKEND_LB):
        address = f"${{data.external.{tf_name(lb.region, 'be_address')}.result.private_ip}}"
        records[tf_name(lb.name, "internal")] = internal_record(spec, lb.name, address)
    return records


def route53_resources(plan: Plan) -> Resources:
    spec = plan.spec
    records = internal_records(plan)
    for region in spec.data_regions:
        records[tf_name(region, "weighted")] = weighted_record(spec, region)
        records[tf_name(region, "entry")] = region_record(spec, region)
    checks = {tf_name(region): health_check(spec, region) for region in spec.data_regions}
    return {
        "aws_route53_zone": {INTERNAL_ZONE: internal_zone(spec)},
        "aws_route53_health_check": checks,
        "aws_route53_record": records,
    }
