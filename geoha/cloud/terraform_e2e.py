"""E2E Networks resources (provider `e2eterraformprovider/e2e`, pinned to 2.2.7).

Per data region: a VPC (E2E picks its network), security groups per role, the
database VM (PostgreSQL + Patroni + the region's etcd member), one template VM
per scaled tier, the images saved from them, a scaler group per tier, and two
managed load balancers (external frontend, internal backend). A witness region
gets a VPC, a security group and one etcd VM, unless it is `cloud.external`
(its VM runs outside E2E: nothing is created for it here). Every pair of E2E
regions gets a VPC peering tunnel.

What the provider cannot do is done by the module's `e2e_api.py`
(geoha.cloud.e2e_api) within the same apply: `terraform_data` resources wait
for each template to say it is built and to be off before its image is saved,
and create (and on destroy delete) the peering tunnels; `data "external"`
lookups read what E2E assigns at creation and the provider records only on its
next read (each VPC's network, each fixed VM's and backend LB's private
address), answering from the state once it has it.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import shlex
from typing import Any

from geoha.cloud.cloudinit import (
    BUILD_STATUS_PORT,
    cloud_init_name,
    node_id_variable,
    template_variables,
)
from geoha.cloud.vms import (
    NAME_SERVERS_VARIABLE,
    Vm,
    VmKind,
    cloud_vms,
    e2e_regions,
    internet_witnesses,
    network_variable,
    on_e2e,
    region_location,
    watcher_region,
)
from geoha.plan import NodeRole, Plan
from geoha.spec import ApiRoute, Autoscale, Spec

Resources = dict[str, dict[str, dict[str, Any]]]
"""Terraform JSON `resource` section: type -> name -> arguments."""

HELPER = "e2e_api.py"
"""The module's E2E API helper (geoha.cloud.e2e_api), run with the operator's python3."""
HELPER_COMMAND = f'python3 "${{path.module}}/{HELPER}"'
TEMPLATE_TIMEOUT_S = 2700
"""How long a template may take to install its tier and say it is built (45 min)."""
VERSION_DIGITS = 8
"""Hex digits of a template's start-script hash in the names of what is built from it."""
BUILD_DIGITS = 6
"""Characters of a build's ID (a UUID's first hex digits) in an image's and a group's name."""
ADDRESS_TIMEOUT_S = 1200
"""How long E2E may take to give a new VM or LB its address, or a VPC its network (20 min)."""
INTERNAL_ZONE = "internal"
"""The module's own Route 53 hosted zone of internal names (geoha.cloud.terraform_route53)."""
E2E_POLICY_PERIOD_S = 10
"""Length of one E2E scaling-policy period (the E2E docs' examples use 10)."""
SCALE_UP_PERIODS = 3
"""Periods CPU must stay above the threshold before a scale-up (the spec has no such window)."""
TEMPLATE_VARIABLE_SOURCES = {
    "superuser_password": "var.db_superuser_password",
    "replication_password": "var.db_replication_password",
    "app_password": "var.db_app_password",
    "rest_password": "var.patroni_rest_password",
    "app_source_url": "var.app_source_url",
    "e2e_api_key": "var.e2e_api_key",
    "e2e_auth_token": "var.e2e_auth_token",
    "e2e_project_id": "var.e2e_project_id",
    # Multi-line PEM blocks go into cloud-init as one base64 line (write_files: b64).
    "ca_certificate": "base64encode(var.internal_ca_certificate)",
    "ca_key": "base64encode(var.internal_ca_key)",
}


def tf_name(*parts: str) -> str:
    """A Terraform resource name from region/role parts (`delhi_web_sg`)."""
    return "_".join(parts).replace("-", "_")


def common(spec: Spec, region: str) -> dict[str, Any]:
    return {"project_id": "${var.e2e_project_id}", "location": region_location(spec, region)}


def ssh_key_name(spec: Spec, region: str) -> str:
    return tf_name("ssh", region_location(spec, region).lower())


def ssh_keys(spec: Spec) -> Resources:
    """One registered SSH key per E2E location used (the key itself is a variable)."""
    keys: dict[str, dict[str, Any]] = {}
    for region in e2e_regions(spec):
        location = region_location(spec, region)
        keys[ssh_key_name(spec, region)] = {
            "label": f"{spec.cloud.ssh_key_name}-{location.lower()}",
            "ssh_key": "${var.ssh_public_key}",
            "project_id": "${var.e2e_project_id}",
            "location": location,
        }
    return {"e2e_ssh_key": keys}


def vpc(spec: Spec, region: str) -> dict[str, Any]:
    """E2E picks the network (the 2.x provider takes no CIDR; `network_size` 512 by
    default): the region's `cidr` is the layout its slots are drawn from, and each VM
    maps it to the real one at boot (geoha.cloud.boot_addresses)."""
    return {"vpc_name": f"{spec.name}-{region}", **common(spec, region)}


MY_NETWORK_SIZE = 512
"""The provider sends (and reads back) `size = 512` for a `myNetwork` rule whatever the
config says: rendering it keeps the next plan from showing a change."""


def network_of(spec: Spec, region: str) -> str:
    """The expression of an E2E region's real network: what E2E gave its VPC, read back
    once by the `R_network` lookup."""
    return f"data.external.{tf_name(region, 'network')}.result.cidr"


def source(spec: Spec, region: str, origin: str) -> dict[str, Any]:
    """Rule source: the region's own VPC, or another region's network. A rule's `size` is
    the number of addresses it admits (the provider's `network_size`), not a prefix length.
    A witness run outside E2E is on the spec's `cidr`; an E2E region on what E2E gave it."""
    if origin == region:
        return {
            "network": "myNetwork",
            "network_cidr": f"vpc_${{e2e_vpc.{tf_name(region)}.id}}",
            "size": MY_NETWORK_SIZE,
        }
    if spec.regions[origin].cloud.on_aws:  # its Elastic IP, across the internet
        return {"network": "manual", "network_cidr": f"${{{elastic_ip(origin)}}}", "size": 1}
    if spec.regions[origin].cloud.external:
        net = ipaddress.IPv4Network(spec.regions[origin].cidr)
        return {
            "network": "manual",
            "network_cidr": str(net.network_address),
            "size": net.num_addresses,
        }
    return manual_network(network_of(spec, origin))


def manual_network(cidr: str) -> dict[str, Any]:
    """A rule source for the network a Terraform expression names (`var.admin_cidr`): its
    first address and as many addresses as it holds."""
    return {
        "network": "manual",
        "network_cidr": f"${{cidrhost({cidr}, 0)}}",
        "size": f'${{pow(2, 32 - tonumber(split("/", {cidr})[1]))}}',
    }


def inbound(port: int, origin: dict[str, Any], why: str) -> dict[str, Any]:
    return {
        "rule_type": "Inbound",
        "protocol_name": "Custom_TCP",
        "port_range": str(port),
        **origin,
        "description": why,
    }


ADMIN = manual_network("var.admin_cidr")
"""The administrators' network (var.admin_cidr), as many addresses as it holds."""


def base_rules() -> list[dict[str, Any]]:
    """SSH from the administrators' network only; everything outbound (packages, DNS)."""
    outbound = {
        "rule_type": "Outbound",
        "protocol_name": "All",
        "port_range": "All",
        "network": "any",
        "description": "everything outbound",
    }
    return [inbound(22, ADMIN, "SSH from var.admin_cidr"), outbound]


def database_rules(spec: Spec, region: str) -> list[dict[str, Any]]:
    """PostgreSQL and the etcd member's health listener from the API instances (own VPC:
    the health is the API's DCS fence), PostgreSQL and Patroni REST from the other
    regions' database nodes; etcd only among the cluster's regions."""
    others = [name for name in spec.regions if name != region]
    rules = [
        inbound(spec.database.port, source(spec, region, region), "PostgreSQL from the API"),
        inbound(spec.etcd.health_port, source(spec, region, region), "etcd health from the API"),
    ]
    for other in (n for n in spec.data_regions if n != region):
        rules.append(inbound(spec.database.port, source(spec, region, other), "replication"))
        rules.append(inbound(spec.database.patroni_port, source(spec, region, other), "Patroni"))
    watcher = watcher_region(spec)
    if watcher is not None:  # the watcher's own probe: Patroni's /liveness, or the postmaster
        origin = source(spec, region, watcher)
        rules.append(inbound(spec.database.patroni_port, origin, "Patroni from the watcher"))
        rules.append(inbound(spec.database.port, origin, "PostgreSQL from the watcher"))
    return rules + etcd_rules(spec, region, others)


def etcd_rules(spec: Spec, region: str, origins: list[str]) -> list[dict[str, Any]]:
    rules = []
    for other in origins:
        origin = source(spec, region, other)
        rules.append(inbound(spec.etcd.client_port, origin, "etcd clients (Patroni)"))
        rules.append(inbound(spec.etcd.peer_port, origin, "etcd peers"))
    return rules


def security_group(spec: Spec, region: str, role: str, rules: list[dict[str, Any]]) -> Any:
    return {
        "name": f"{spec.name}-{region}-{role}",
        "description": f"geoha {role} nodes of {region}",
        **common(spec, region),
        "default": False,
        "rules": rules + base_rules(),
    }


def security_groups(spec: Spec, region: str) -> dict[str, Any]:
    """Per role. E2E rules are CIDR based, and LB and scaler-group addresses are only known
    after creation, so 'only from its LB' is enforced as 'only from inside the region VPC'."""
    own = source(spec, region, region)
    port = spec.traffic.http_port
    if not spec.regions[region].is_data:
        others = [n for n in spec.regions if n != region]
        return {
            tf_name(region, "etcd_sg"): security_group(
                spec, region, "etcd", etcd_rules(spec, region, others)
            )
        }
    build = inbound(BUILD_STATUS_PORT, ADMIN, "template build status, from var.admin_cidr")
    return {
        tf_name(region, "web_sg"): security_group(
            spec, region, "web", [inbound(port, own, "web from the frontend LB"), build]
        ),
        tf_name(region, "api_sg"): security_group(
            spec, region, "api", [inbound(port, own, "API from the load balancers"), build]
        ),
        tf_name(region, "db_sg"): security_group(spec, region, "db", database_rules(spec, region)),
    }


def template_source(plan: Plan, name: str) -> str:
    """The Terraform expression a cloud-init template variable is filled from."""
    for db in plan.database_nodes:
        if name == node_id_variable(db):
            return f"e2e_node.{tf_name(db.name)}.id"
    for region in e2e_regions(plan.spec):
        if name == network_variable(region):
            return network_of(plan.spec, region)
    if name == NAME_SERVERS_VARIABLE:
        return f'join(" ", aws_route53_zone.{INTERNAL_ZONE}.name_servers)'
    return TEMPLATE_VARIABLE_SOURCES[name]


def start_script(plan: Plan, vm: Vm) -> str:
    """The VM's cloud-init, filled from Terraform variables at apply time (an expression)."""
    args = ", ".join(f"{v} = {template_source(plan, v)}" for v in template_variables(plan, vm))
    return f'templatefile("${{path.module}}/cloud-init/{cloud_init_name(vm)}", {{{args}}})'


def build_name(region: str, tier: str) -> str:
    """`terraform_data` holding a template's version: its filled start script's hash."""
    return tf_name(region, tier, "build")


def version(region: str, tier: str) -> str:
    """A template's version, for the names of its node, image and scaler group."""
    return f"${{terraform_data.{build_name(region, tier)}.output.version}}"


def built_name(region: str, tier: str) -> str:
    """`terraform_data` that waits for a template's build and its power-off."""
    return tf_name(region, tier, "built")


def image_tag(region: str, tier: str) -> str:
    """What names an image and the scaler group started from it: the template's version
    and its build (the `built` step's ID), so a template built again at the same version
    (`-replace`) still gives an image and a group of new names, as create_before_destroy
    needs."""
    build = f"${{substr(terraform_data.{built_name(region, tier)}.id, 0, {BUILD_DIGITS})}}"
    return f"{version(region, tier)}-{build}"


def build(plan: Plan, vm: Vm) -> dict[str, Any]:
    """A template's version: any change to its filled cloud-init (the source URL, a password,
    the tier's configs) makes a new one, and with it a new template, image and scaler group.
    The hash reveals nothing of the passwords in the script (hence `nonsensitive`, of a
    value made sensitive first: Terraform before 1.7 refuses `nonsensitive` of a value
    that is not, as a web template's script is not)."""
    script = f"sensitive({start_script(plan, vm)})"
    digest = f"nonsensitive(substr(sha256({script}), 0, {VERSION_DIGITS}))"
    return {"input": {"version": f"${{{digest}}}"}}


VM_ROLE = {VmKind.DATABASE: "db", VmKind.WITNESS: "etcd", VmKind.WEB: "web", VmKind.API: "api"}


def vm_plan(spec: Spec, vm: Vm) -> str:
    cloud = spec.regions[vm.region].cloud
    return {
        VmKind.DATABASE: cloud.database_plan,
        VmKind.WITNESS: cloud.etcd_plan,
        VmKind.WEB: cloud.web_plan,
        VmKind.API: cloud.api_plan,
    }[vm.kind]


def node(plan: Plan, vm: Vm) -> dict[str, Any]:
    """A VM with its cloud-init as start script.

    The provider refuses to change `start_script` after creation, so it is ignored: a
    template is replaced instead when its version changes; a database or witness VM
    keeps what it was built with (replacing one is a data operation: docs/CLOUD.md). A
    template is powered off by the module's helper once built, so its power state is
    not Terraform's to restore."""
    spec = plan.spec
    role = VM_ROLE[vm.kind]
    name = f"{spec.name}-{vm.name}"
    lifecycle: dict[str, Any] = {"ignore_changes": ["start_script"]}
    if vm.template:
        tier = vm.kind.value
        name = f"{name}-template-{version(vm.region, tier)}"
        lifecycle = {
            "ignore_changes": ["start_script", "power_status"],
            "replace_triggered_by": [f"terraform_data.{build_name(vm.region, tier)}"],
        }
    return {
        "name": name,
        "label": spec.name,
        "plan": vm_plan(spec, vm),
        "image": spec.cloud.image,
        **common(spec, vm.region),
        "vpc_id": f"${{e2e_vpc.{tf_name(vm.region)}.id}}",
        "security_group_ids": [f"${{e2e_security_group.{tf_name(vm.region, role, 'sg')}.id}}"],
        "ssh_keys": [f"${{e2e_ssh_key.{ssh_key_name(spec, vm.region)}.label}}"],
        "start_script": f"${{{start_script(plan, vm)}}}",
        "lifecycle": lifecycle,
    }


def vm_resource_name(vm: Vm) -> str:
    return tf_name(vm.name) if not vm.template else tf_name(vm.name, "template")


def number_text(value: float) -> str:
    """70.0 -> "70", 72.5 -> "72.5" (E2E takes policy numbers as strings)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def policies(scale: Autoscale) -> list[dict[str, Any]]:
    """The spec's CPU thresholds as E2E elastic policies: one scale-up, one scale-down.

    Scale-up after SCALE_UP_PERIODS periods above the threshold; scale-down once
    CPU stayed below its threshold for the spec's scale-in stabilization window;
    both followed by the spec's cooldown.
    """
    cooldown = number_text(math.ceil(scale.cooldown_s))
    down_periods = max(1, math.ceil(scale.scale_in_stabilization_s / E2E_POLICY_PERIOD_S))

    def policy(adjust: int, operator: str, value: float, periods: int) -> dict[str, Any]:
        return {
            "type": "CHANGE",
            "adjust": adjust,
            "parameter": "CPU",
            "operator": operator,
            "value": number_text(value),
            "period_number": str(periods),
            "period_seconds": str(E2E_POLICY_PERIOD_S),
            "cooldown": cooldown,
        }

    return [
        policy(1, ">", scale.scale_up_cpu_percent, SCALE_UP_PERIODS),
        policy(-1, "<", scale.scale_down_cpu_percent, down_periods),
    ]


def scaler_group(spec: Spec, region: str, tier: str) -> dict[str, Any]:
    scale: Autoscale = getattr(spec.regions[region], tier).autoscale
    cloud = spec.regions[region].cloud
    return {
        "name": f"{spec.name}-{region}-{tier}-{image_tag(region, tier)}",
        **common(spec, region),
        "plan_name": cloud.web_plan if tier == "web" else cloud.api_plan,
        "vm_image_name": f"${{e2e_image.{tf_name(region, tier)}.name}}",
        "is_encryption_enabled": False,
        "is_public_ip_required": True,
        "min_nodes": scale.min,
        "max_nodes": scale.max,
        "desired": scale.desired,
        "policy_type": "Default",
        "policy": policies(scale),
        "vpc": [{"name": f"${{e2e_vpc.{tf_name(region)}.vpc_name}}"}],
        "my_account_sg_id": f"${{e2e_security_group.{tf_name(region, tier, 'sg')}.id}}",
        # Started only from a saved image (the provider does not wait for the save).
        "depends_on": [f"terraform_data.{image_saved_name(region, tier)}"],
        # The autoscaler owns the count (the provider reads it back); a new version is a new
        # group (its name and image are ForceNew), up before the old one goes.
        "lifecycle": {"ignore_changes": ["desired"], "create_before_destroy": True},
    }


def image(spec: Spec, region: str, tier: str) -> dict[str, Any]:
    """Saved from the tier's template once it is built and off (`built`). The provider
    neither replaces an image when its name or node changes nor waits for the save, so a
    new build replaces it (`replace_triggered_by`), and the new one exists before the old
    one, which the old scaler group still uses, is deleted."""
    built = f"terraform_data.{built_name(region, tier)}"
    return {
        "name": f"{spec.name}-{region}-{tier}-{image_tag(region, tier)}",
        "node_id": f"${{e2e_node.{tf_name(region, tier, 'template')}.id}}",
        **common(spec, region),
        "depends_on": [built],
        "lifecycle": {"replace_triggered_by": [built], "create_before_destroy": True},
    }


def shell_words(*words: str) -> str:
    """A shell command line; Terraform expressions (`${...}`, numeric IDs) stay unquoted."""
    return " ".join(w if w.startswith("${") else shlex.quote(w) for w in words)


def wait_step(
    spec: Spec,
    region: str,
    target: tuple[str, str],
    command: tuple[str, ...],
    options: tuple[str, ...],
) -> dict[str, Any]:
    """`terraform_data` running the helper's `command` once for each new `target` (its
    argument name, its ID expression), with the project and location, then `options`."""
    key, id_expression = target
    words = shell_words(
        *command,
        f"--{key.replace('_', '-')}",
        f"${{self.input.{key}}}",
        "--project-id",
        "${self.input.project_id}",
        "--location",
        region_location(spec, region),
        *options,
    )
    return {
        "input": {key: id_expression, "project_id": "${var.e2e_project_id}"},
        "triggers_replace": [id_expression],
        "provisioner": [{"local-exec": {"command": f"{HELPER_COMMAND} {words}"}}],
    }


def built(spec: Spec, vm: Vm) -> dict[str, Any]:
    """Waits, at the template's creation, until it says `built` (a positive signal its
    cloud-init gives once every step succeeded), then for it to be off for its image."""
    node = f"e2e_node.{vm_resource_name(vm)}"
    name = f"{spec.name}-{vm.name}-template"
    return wait_step(
        spec,
        vm.region,
        ("node_id", f"${{{node}.id}}"),
        ("wait-built", "--name", name, "--replace", node),
        ("--port", str(BUILD_STATUS_PORT), "--timeout-s", str(TEMPLATE_TIMEOUT_S)),
    )


IMAGE_TIMEOUT_S = 1800
"""How long E2E may take to save a template's image (30 min)."""


def image_saved_name(region: str, tier: str) -> str:
    """`terraform_data` that waits until an image is saved (the scaler group waits on it)."""
    return tf_name(region, tier, "image_saved")


def image_saved(spec: Spec, region: str, tier: str) -> dict[str, Any]:
    """Waits, at each new image, until E2E has saved it: the provider's e2e_image returns
    as soon as the save is asked for."""
    return wait_step(
        spec,
        region,
        ("image_id", f"${{e2e_image.{tf_name(region, tier)}.id}}"),
        ("wait-image", "--name", f"{spec.name}-{region}-{tier} image"),
        ("--timeout-s", str(IMAGE_TIMEOUT_S)),
    )


def peering(spec: Spec, local: str, peer: str) -> dict[str, Any]:
    """The VPC peering tunnel between two regions (deleted again on destroy)."""
    name = f"{spec.name}-{local}-{peer}"
    location = region_location(spec, local)

    def command(action: str, *extra: str) -> str:
        words = shell_words(
            "peer",
            action,
            "--name",
            name,
            "--project-id",
            "${self.input.project_id}",
            "--location",
            location,
            "--local-vpc",
            "${self.input.local_vpc}",
            *extra,
        )
        return f"{HELPER_COMMAND} {words}"

    return {
        "count": "${var.vpc_peering ? 1 : 0}",
        "input": {
            "project_id": "${var.e2e_project_id}",
            "local_vpc": f"${{e2e_vpc.{tf_name(local)}.id}}",
            "peer_vpc": f"${{e2e_vpc.{tf_name(peer)}.id}}",
        },
        "provisioner": [
            {"local-exec": {"command": command("create", "--peer-vpc", "${self.input.peer_vpc}")}},
            {"local-exec": {"when": "destroy", "command": command("delete")}},
        ],
    }


def lookup(spec: Spec, region: str, *, command: str, name: str, of: str, known: str) -> Any:
    """`data "external"`: a value E2E assigns at creation and the provider records only on
    its next read. Terraform passes that record (`known`): once it is there, the helper
    answers at once, without asking E2E, so a plan never waits; before, it waits for E2E
    (at creation only)."""
    return {
        "program": ["python3", f"${{path.module}}/{HELPER}", command],
        "query": {
            "id": f"${{{of}.id}}",
            # Empty (or null) until the provider has read the resource back.
            "known": f'${{coalesce({of}.{known}, "none")}}',
            "project_id": "${var.e2e_project_id}",
            "location": region_location(spec, region),
            "name": name,
            "timeout_s": str(ADDRESS_TIMEOUT_S),
        },
    }


def witness_instance(region: str) -> str:
    """Terraform name of a witness region's AWS instance, and of its interface and
    Elastic IP (geoha.cloud.terraform_aws)."""
    return tf_name(region, "etcd")


def elastic_ip(region: str) -> str:
    """The expression of an AWS witness's Elastic IP (its internal name points there)."""
    return f"aws_eip.{witness_instance(region)}.public_ip"


def public_address(region: str) -> str:
    """The expression of a data region's database VM's public address (what a witness
    across the internet sees its etcd member and Patroni come from)."""
    return f"data.external.{tf_name(region, 'db_public')}.result.public_ip"


def lookups(plan: Plan) -> dict[str, dict[str, Any]]:
    """Each E2E region's network (`R_network`), each fixed VM's private address
    (`VM_address`) and each backend LB's (`R_be_address`); with a witness across the
    internet, each database VM's public address (`R_db_public`)."""
    spec = plan.spec
    found = {
        tf_name(region, "network"): lookup(
            spec,
            region,
            command="vpc-network",
            name=f"{spec.name}-{region}",
            of=f"e2e_vpc.{tf_name(region)}",
            known="ipv4_cidr",
        )
        for region in e2e_regions(spec)
    }
    for vm in cloud_vms(plan):
        if not vm.template and on_e2e(spec, vm):
            found[tf_name(vm.name, "address")] = lookup(
                spec,
                vm.region,
                command="node-address",
                name=f"{spec.name}-{vm.name}",
                of=f"e2e_node.{vm_resource_name(vm)}",
                known="private_ip_address",
            )
    if internet_witnesses(spec):
        for db in plan.database_nodes:
            found[tf_name(db.region, "db_public")] = lookup(
                spec,
                db.region,
                command="node-public-address",
                name=f"{spec.name}-{db.name}",
                of=f"e2e_node.{tf_name(db.name)}",
                known="public_ip_address",
            )
    for region in spec.data_regions:
        found[tf_name(region, "be_address")] = lookup(
            spec,
            region,
            command="lb-address",
            name=f"{spec.name}-{region}-be",
            of=f"e2e_loadbalancer.{tf_name(region, 'be')}",
            known="private_ip",
        )
    return found


def terraform_data(plan: Plan) -> dict[str, dict[str, Any]]:
    spec = plan.spec
    steps: dict[str, dict[str, Any]] = {}
    for vm in cloud_vms(plan):
        if vm.template:
            steps[build_name(vm.region, vm.kind.value)] = build(plan, vm)
            steps[built_name(vm.region, vm.kind.value)] = built(spec, vm)
            steps[image_saved_name(vm.region, vm.kind.value)] = image_saved(
                spec, vm.region, vm.kind.value
            )
    for local, peer in itertools.combinations(e2e_regions(spec), 2):
        steps[tf_name("peering", local, peer)] = peering(spec, local, peer)
    return steps


def lb_backend(name: str, region: str, tier: str, port: int, check: str) -> dict[str, Any]:
    return {
        "name": name,
        "balance": "roundrobin",
        "scaler_id": f"${{e2e_scaler_group.{tf_name(region, tier)}.id}}",
        "scaler_port": str(port),
        "checkbox_enable": True,
        "http_check": True,
        "check_url": check,
    }


def frontend_lb(plan: Plan, region: str) -> dict[str, Any]:
    """Public entry (80 and 443): the web tier, and with the direct API route, /api/* and
    /health/deep straight to the API tier (E2E backends are nodes or scaler groups)."""
    spec = plan.spec
    web = plan.in_region(region, NodeRole.WEB)[0]
    api = plan.in_region(region, NodeRole.API)[0]
    lb: dict[str, Any] = {
        "lb_name": f"{spec.name}-{region}-fe",
        "plan_name": spec.regions[region].cloud.frontend_lb_plan,
        **common(spec, region),
        "lb_type": "External",
        "lb_mode": "Both",
        "node_list_type": "D",
        "ssl_certificate_id": "${var.frontend_ssl_certificate_id}",
        "ssl_context": [{"redirect_to_https": spec.traffic.redirects(cloud=True)}],
        "backends": [lb_backend("web", region, "web", web.ports["http"], "/health/")],
        "vpc_list": [f"${{e2e_vpc.{tf_name(region)}.id}}"],
    }
    if spec.traffic.api_route is ApiRoute.DIRECT:
        lb["backends"].append(lb_backend("api", region, "api", api.ports["http"], "/health"))
        lb["acl_list"] = [
            {"acl_name": "api", "acl_condition": "path_beg", "acl_matching_path": "/api/"},
            {"acl_name": "deep", "acl_condition": "path", "acl_matching_path": "/health/deep"},
        ]
        lb["acl_map"] = [
            {"acl_name": "api", "acl_backend": "api"},
            {"acl_name": "deep", "acl_backend": "api"},
        ]
    return lb


def backend_lb(plan: Plan, region: str) -> dict[str, Any]:
    """Internal: what web instances proxy /api/* to (port 80 on its private address)."""
    spec = plan.spec
    api = plan.in_region(region, NodeRole.API)[0]
    return {
        "lb_name": f"{spec.name}-{region}-be",
        "plan_name": spec.regions[region].cloud.backend_lb_plan,
        **common(spec, region),
        "lb_type": "Internal",
        "lb_mode": "HTTP",
        "node_list_type": "D",
        "backends": [lb_backend("api", region, "api", api.ports["http"], "/health")],
        "vpc_list": [f"${{e2e_vpc.{tf_name(region)}.id}}"],
    }


def e2e_resources(plan: Plan) -> Resources:
    """Every E2E resource of the deployment."""
    spec = plan.spec
    resources: Resources = {
        "e2e_vpc": {tf_name(r): vpc(spec, r) for r in e2e_regions(spec)},
        "e2e_security_group": {},
        "e2e_node": {
            vm_resource_name(vm): node(plan, vm) for vm in cloud_vms(plan) if on_e2e(spec, vm)
        },
        "e2e_image": {},
        "e2e_scaler_group": {},
        "e2e_loadbalancer": {},
        **ssh_keys(spec),
        "terraform_data": terraform_data(plan),
    }
    for region in e2e_regions(spec):
        resources["e2e_security_group"] |= security_groups(spec, region)
    for region in spec.data_regions:
        for tier in ("web", "api"):
            resources["e2e_image"][tf_name(region, tier)] = image(spec, region, tier)
            resources["e2e_scaler_group"][tf_name(region, tier)] = scaler_group(spec, region, tier)
        resources["e2e_loadbalancer"][tf_name(region, "fe")] = frontend_lb(plan, region)
        resources["e2e_loadbalancer"][tf_name(region, "be")] = backend_lb(plan, region)
    return resources
