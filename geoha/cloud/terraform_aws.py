"""AWS resources of a witness region on AWS (`regions.R.cloud.provider = "aws"`).

E2E's API lists Delhi and Chennai only, so the reference witness (Mumbai) runs
as one small EC2 instance in `ap-south-1`. Per such region, through a provider
block of its own (`aws.R`, in the region's `location`):

- a VPC with the region's `cidr`, one subnet, an internet gateway and the
  default route through it;
- a network interface with an Elastic IP bound to it before the instance
  starts, so its first boot already reaches the package mirrors (AWS picks the
  private address, which geoha-addresses finds at boot, as on E2E);
- a security group admitting etcd's client and peer ports only from the data
  regions' database VMs' public addresses (their etcd members and Patroni),
  and SSH only from `var.admin_cidr`; everything outbound;
- the instance (`instance_type`, Ubuntu 24.04 like the E2E VMs, Canonical's
  newest image of the instance's architecture), its cloud-init gzip-compressed
  as user data (AWS takes 16 KB).

etcd then speaks mutual TLS across the internet: every member is dialled by its
internal name, which the E2E VMs resolve to the witness's Elastic IP and the
witness to the database VMs' public addresses (geoha.cloud.vms.cloud_node).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from geoha.cloud.terraform_e2e import (
    Resources,
    public_address,
    start_script,
    tf_name,
    witness_instance,
)
from geoha.cloud.vms import Vm, cloud_vms, internet_witnesses
from geoha.plan import NodeRole, Plan
from geoha.spec import Spec

UBUNTU_OWNER = "099720109477"
"""Canonical's AWS account, the owner of the official Ubuntu images."""
UBUNTU_IMAGES = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*"
"""Name pattern of Canonical's Ubuntu 24.04 server images (the E2E VMs' `Ubuntu-24.04`)."""
GRAVITON = re.compile(r"^[a-z]+[0-9]+[a-z]*g[a-z]*\.")
"""Instance types on AWS's own ARM processors: a `g` after the generation digit
(t4g.nano, m7gd.large, c6gn.medium), not a family that starts with one (g4dn)."""
SUBNET_PREFIX = 24
WITNESS_DISK_GB = 8
"""The witness's root disk (gp3): etcd's data is a few MB; `geoha cost` prices this size."""


def architecture(instance_type: str) -> str:
    """The image architecture an instance type runs: `arm64` (Graviton) or `amd64`."""
    return "arm64" if GRAVITON.match(instance_type) else "amd64"


def provider_alias(region: str) -> str:
    return tf_name(region)


def provider_ref(region: str) -> str:
    """What a witness region's resources name as their `provider`."""
    return f"aws.{provider_alias(region)}"


def provider_block(spec: Spec, region: str) -> dict[str, Any]:
    """The AWS provider in the witness region's AWS region (Route 53's stays the default)."""
    location = spec.regions[region].cloud.location
    return {"alias": provider_alias(region), "region": location}


def witness_vm(plan: Plan, region: str) -> Vm:
    return next(vm for vm in cloud_vms(plan) if vm.region == region)


def subnet_of(address: str) -> str:
    return str(ipaddress.IPv4Network(f"{address}/{SUBNET_PREFIX}", strict=False))


def ingress(provider: str, group: str, cidr: str, port: int, why: str) -> dict[str, Any]:
    return {
        "provider": provider,
        "security_group_id": f"${{aws_security_group.{group}.id}}",
        "cidr_ipv4": cidr,
        "ip_protocol": "tcp",
        "from_port": port,
        "to_port": port,
        "description": why,
    }


def security_rules(spec: Spec, region: str, group: str) -> Resources:
    """etcd from each data region's database VM (its member, and Patroni as a client),
    SSH from the administrators' network; everything outbound."""
    provider = provider_ref(region)
    rules: dict[str, dict[str, Any]] = {
        tf_name(region, "ssh"): ingress(
            provider, group, "${var.admin_cidr}", 22, "SSH from var.admin_cidr"
        )
    }
    for data in spec.data_regions:
        cidr = f"${{{public_address(data)}}}/32"
        for port, what in ((spec.etcd.client_port, "client"), (spec.etcd.peer_port, "peer")):
            rules[tf_name(region, "etcd", what, data)] = ingress(
                provider, group, cidr, port, f"etcd {what} from {data}'s database VM"
            )
    egress = {
        "provider": provider,
        "security_group_id": f"${{aws_security_group.{group}.id}}",
        "cidr_ipv4": "0.0.0.0/0",
        "ip_protocol": "-1",
        "description": "everything outbound (packages, Route 53, etcd peers)",
    }
    return {
        "aws_vpc_security_group_ingress_rule": rules,
        "aws_vpc_security_group_egress_rule": {tf_name(region, "out"): egress},
    }


def witness_resources(plan: Plan, region: str) -> Resources:
    """Every AWS resource of one witness region on AWS."""
    spec = plan.spec
    cloud = spec.regions[region].cloud
    vm = witness_vm(plan, region)
    etcd = plan.only(region, NodeRole.ETCD)
    name = tf_name(region)
    instance = witness_instance(region)
    group = tf_name(region, "etcd_sg")
    provider = provider_ref(region)
    label = f"{spec.name}-{region}"

    def tags(what: str) -> dict[str, str]:
        return {"Name": f"{label}-{what}" if what else label}

    script = f"base64gzip({start_script(plan, vm)})"
    resources: Resources = {
        "aws_vpc": {
            name: {
                "provider": provider,
                "cidr_block": spec.regions[region].cidr,
                "enable_dns_support": True,
                "tags": tags(""),
            }
        },
        "aws_subnet": {
            name: {
                "provider": provider,
                "vpc_id": f"${{aws_vpc.{name}.id}}",
                "cidr_block": subnet_of(etcd.address),
                "map_public_ip_on_launch": False,
                "tags": tags("etcd"),
            }
        },
        "aws_internet_gateway": {
            name: {"provider": provider, "vpc_id": f"${{aws_vpc.{name}.id}}", "tags": tags("")}
        },
        "aws_route": {
            tf_name(region, "internet"): {
                "provider": provider,
                "route_table_id": f"${{aws_vpc.{name}.main_route_table_id}}",
                "destination_cidr_block": "0.0.0.0/0",
                "gateway_id": f"${{aws_internet_gateway.{name}.id}}",
            }
        },
        "aws_security_group": {
            group: {
                "provider": provider,
                "name": f"{label}-etcd",
                "description": f"geoha etcd witness of {region}",
                "vpc_id": f"${{aws_vpc.{name}.id}}",
                "tags": tags("etcd"),
            }
        },
        "aws_network_interface": {
            instance: {
                "provider": provider,
                "subnet_id": f"${{aws_subnet.{name}.id}}",
                "security_groups": [f"${{aws_security_group.{group}.id}}"],
                "tags": tags("etcd"),
            }
        },
        "aws_eip": {
            instance: {
                "provider": provider,
                "domain": "vpc",
                "network_interface": f"${{aws_network_interface.{instance}.id}}",
                "tags": tags("etcd"),
                # AWS binds an Elastic IP only in a VPC that has an internet gateway.
                "depends_on": [f"aws_internet_gateway.{name}"],
            }
        },
        "aws_key_pair": {
            name: {
                "provider": provider,
                "key_name": f"{spec.cloud.ssh_key_name}-{label}",
                "public_key": "${var.ssh_public_key}",
                "tags": tags(""),
            }
        },
        "aws_instance": {
            instance: {
                "provider": provider,
                "ami": f"${{data.aws_ami.{name}.id}}",
                "instance_type": cloud.aws_instance_type,
                "key_name": f"${{aws_key_pair.{name}.key_name}}",
                "network_interface": [
                    {
                        "network_interface_id": f"${{aws_network_interface.{instance}.id}}",
                        "device_index": 0,
                    }
                ],
                "user_data_base64": f"${{{script}}}",
                # IMDSv2 only: no instance metadata for a request without a session token.
                "metadata_options": [{"http_endpoint": "enabled", "http_tokens": "required"}],
                "root_block_device": [
                    {"encrypted": True, "volume_type": "gp3", "volume_size": WITNESS_DISK_GB}
                ],
                "tags": tags("etcd"),
                # Its first boot installs packages: the address and the route come first.
                "depends_on": [
                    f"aws_eip.{instance}",
                    f"aws_route.{tf_name(region, 'internet')}",
                    f"aws_vpc_security_group_egress_rule.{tf_name(region, 'out')}",
                ],
                # A newer image would replace the witness (a data operation: docs/CLOUD.md),
                # and a changed cloud-init would stop and start it for nothing (cloud-init
                # runs once): both are left alone, as the E2E VMs' start scripts are.
                "lifecycle": {"ignore_changes": ["ami", "user_data_base64"]},
            }
        },
        **security_rules(spec, region, group),
    }
    return resources


def aws_documents(plan: Plan) -> tuple[Resources, dict[str, Any]]:
    """(`resource`, `data`) of every witness region on AWS; both empty without one."""
    resources: Resources = {}
    images: dict[str, Any] = {}
    for region in internet_witnesses(plan.spec):
        for rtype, instances in witness_resources(plan, region).items():
            resources.setdefault(rtype, {}).update(instances)
        images[tf_name(region)] = witness_image(plan, region)
    return resources, ({"aws_ami": images} if images else {})


def witness_image(plan: Plan, region: str) -> dict[str, Any]:
    arch = architecture(plan.spec.regions[region].cloud.aws_instance_type)
    return {
        "provider": provider_ref(region),
        "most_recent": True,
        "owners": [UBUNTU_OWNER],
        "filter": [
            {"name": "name", "values": [UBUNTU_IMAGES.format(arch=arch)]},
            {"name": "architecture", "values": ["arm64" if arch == "arm64" else "x86_64"]},
        ],
    }
