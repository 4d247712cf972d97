"""cloud-init (`#cloud-config`) for every VM of the cloud deployment.

Each file installs its VM's packages, writes the configs the *local renderers*
produce for the cloud plan (byte-identical to a local render apart from
addresses), the systemd units that run them (restart policies included) and
the boot-time address step (geoha.cloud.boot_addresses). Configs are written
pristine under /etc/geoha/rendered/ and copied to their live path, with real
addresses, by geoha-addresses.service at every boot.

The files are Terraform templates (`templatefile`): `${name}` placeholders are
filled at apply time from Terraform variables, so no secret is ever rendered.
Patroni reads its passwords from the environment (PATRONI_SUPERUSER_PASSWORD,
PATRONI_REPLICATION_PASSWORD and PATRONI_RESTAPI_PASSWORD override the config's
placeholders); the API's
password reaches it through a pgpass file. Literal `${` and `%{` are escaped.

Web and API VMs are *templates*: they are built, say so on a transient status
port, are powered off by the module's helper, and Terraform saves them as the
images their scaler groups start (E2E scaler groups take no user data).
HAProxy is not installed anywhere: E2E's managed load balancers play both LB
roles.
"""

from __future__ import annotations

import inspect
import json
import signal
from pathlib import Path
from typing import Any

import yaml

from geoha.cloud import boot_addresses, e2e_api
from geoha.cloud.node_certificates import CA_KEY, IDENTITY_DIR, USAGES, Identity
from geoha.cloud.vms import (
    NAME_SERVERS_VARIABLE,
    Vm,
    VmKind,
    addressed_nodes,
    cloud_vms,
    e2e_regions,
    internal_name,
    network_variable,
    public_name,
    region_location,
    slot_in,
    vpc_network,
    watcher_region,
)
from geoha.db_access import Secrets
from geoha.ops.fastfail import Watched
from geoha.plan import Node, NodeRole, Plan
from geoha.render.configs import process_environment, render_config
from geoha.render.files import File
from geoha.render.pgpass import pgpass_file
from geoha.roles import ROLES, SERVICE_USER, Certificate, Environment

RENDERED_PREFIX = "/etc/geoha/rendered"
SECRETS_ENV = "/etc/geoha/secrets.env"
WATCHER_ENV = "/etc/geoha/fastfail.env"
WATCHER_CONFIG = "/var/lib/geoha/fastfail/fastfail.json"
WATCHER_SERVICE = "geoha-fastfail"
CERTIFICATES_SERVICE = "geoha-certificates"
VENV = "/opt/geoha/venv"
SOURCE_DIR = "/opt/geoha/src"
CREATECLUSTER_CONF = "/etc/postgresql-common/createcluster.d/50-geoha.conf"
NO_MAIN_CLUSTER = (
    "# rendered by geoha: Patroni creates the only cluster\ncreate_main_cluster = false\n"
)

SECRET_PLACEHOLDERS = Secrets(
    superuser="from-environment:PATRONI_SUPERUSER_PASSWORD",
    replication="from-environment:PATRONI_REPLICATION_PASSWORD",
    app="from-environment:GEOHA_APP_PASSWORD",
    rest="from-environment:PATRONI_RESTAPI_PASSWORD",
)
"""What the Patroni config holds instead of passwords; Patroni's environment overrides them."""

TEMPLATE_VARIABLES: dict[VmKind, tuple[str, ...]] = {
    VmKind.DATABASE: (
        "superuser_password",
        "replication_password",
        "app_password",
        "rest_password",
        "app_source_url",
    ),
    VmKind.API: ("app_password", "app_source_url"),
    VmKind.WEB: ("app_source_url",),
    VmKind.WITNESS: (),
}
"""`templatefile` variables each kind of VM's cloud-init expects (a witness that runs the
fast failover watcher expects more: `template_variables`)."""
TLS_VARIABLES: dict[VmKind, tuple[str, ...]] = {
    VmKind.DATABASE: ("ca_certificate", "ca_key"),
    VmKind.WITNESS: ("ca_certificate", "ca_key"),
    VmKind.API: ("ca_certificate",),
    VmKind.WEB: (),
}
"""With internal TLS: the deployment's CA (base64 PEM) for the VMs that verify servers,
and its key for the VMs that sign their own certificates at boot (node_certificates)."""
WATCHER_VARIABLES = ("app_source_url", "e2e_api_key", "e2e_auth_token", "e2e_project_id")
WATCHER_PACKAGES = ["ca-certificates", "curl", "python3-venv"]


def runs_watcher(plan: Plan, vm: Vm) -> bool:
    """Whether the VM runs the fast failover watcher (geoha.cloud.vms.watcher_region)."""
    return vm.kind is VmKind.WITNESS and vm.region == watcher_region(plan.spec)


def node_id_variable(node: Node) -> str:
    """The template variable holding a database VM's E2E node ID (`node_id_delhi_db`)."""
    return "node_id_" + node.name.replace("-", "_")


def template_variables(plan: Plan, vm: Vm) -> tuple[str, ...]:
    """The `templatefile` variables this VM's cloud-init expects."""
    names = TEMPLATE_VARIABLES[vm.kind]
    if plan.tls:
        names += TLS_VARIABLES[vm.kind]
        if vm.kind is VmKind.WITNESS and not runs_watcher(plan, vm):
            names += ("app_source_url",)  # geoha's own code signs its certificate
    if runs_watcher(plan, vm):
        names += WATCHER_VARIABLES + tuple(node_id_variable(n) for n in plan.database_nodes)
    configs = vm_configs(plan, vm)
    names += tuple(network_variable(r) for r in real_networks(plan, vm, configs))
    hosts = host_entries(plan, vm, configs)
    if peers(plan, vm, configs) or any(source != "self" for _, source in hosts):
        names += (NAME_SERVERS_VARIABLE,)
    return names


def real_networks(plan: Plan, vm: Vm, configs: list[File]) -> list[str]:
    """E2E regions whose real network this VM needs: its own (to find its address) and
    each one whose layout network its configs name (pg_hba rules). E2E, not the spec,
    picks a VPC's network; a region run outside E2E keeps the spec's."""
    text = "".join(f.text for f in configs)
    return [
        region
        for region in e2e_regions(plan.spec)
        if region == vm.region or slot_in(text, vpc_network(plan, region))
    ]


def peers(plan: Plan, vm: Vm, configs: list[File]) -> list[Node]:
    """The nodes of other VMs whose slots this VM's configs name."""
    own = {n.name for n in vm.nodes}
    text = "".join(f.text for f in configs)
    return [
        node
        for node in addressed_nodes(plan)
        if node.name not in own and slot_in(text, node.address)
    ]


def host_entries(plan: Plan, vm: Vm, configs: list[File]) -> list[tuple[str, str]]:
    """(name, what it resolves to) of every /etc/hosts line the VM needs: each node name
    its configs dial (an etcd member's `host`), its own as `self`. A witness across the
    internet resolves the data regions' members to their database VMs' public addresses:
    where their connections come from, which etcd checks a peer's certificate names
    against."""
    spec = plan.spec
    text = "".join(f.text for f in configs)
    own = {n.name for n in vm.nodes}
    across = spec.regions[vm.region].cloud.on_aws
    entries = []
    for node in plan.nodes:
        if node.host is None or not (node.name in own or slot_in(text, node.host)):
            continue
        if node.name in own:
            source = "self"
        elif across:
            source = public_name(spec, plan.only(node.region, NodeRole.DATABASE).name)
        else:
            source = node.host
        entries.append((node.host, source))
    return entries


PACKAGES: dict[VmKind, list[str]] = {
    VmKind.DATABASE: [
        "ca-certificates",
        "curl",
        "postgresql-common",
        "etcd-server",
        "python3-venv",
    ],
    VmKind.WITNESS: ["etcd-server"],
    VmKind.WEB: ["ca-certificates", "curl", "caddy"],
    VmKind.API: ["ca-certificates", "curl", "python3-venv"],
}


def tf_var(name: str) -> str:
    """Sentinel standing for the Terraform template placeholder `${name}` until escaping."""
    return f"@@geoha-tf:{name}@@"


def service_name(role: NodeRole) -> str:
    """The systemd unit (without .service) that runs a node of `role` on its VM."""
    service = ROLES[role].service
    if service is None:
        raise ValueError(f"no VM runs a {role.value} node")
    return service


def cloud_user(role: NodeRole) -> str:
    """The VM user that runs a node of `role` and owns its folder."""
    user = ROLES[role].cloud_user
    if user is None:
        raise ValueError(f"no VM runs a {role.value} node")
    return user


def vm_configs(plan: Plan, vm: Vm) -> list[File]:
    """The VM's configs, exactly as the local renderers produce them for the cloud plan."""
    return [f for node in vm.nodes for f in render_config(plan, node, SECRET_PLACEHOLDERS)]


def address_map(plan: Plan, vm: Vm, configs: list[File]) -> str:
    """/etc/geoha/addresses.map: the slots and networks this VM's configs mention and what
    they become (geoha.cloud.boot_addresses)."""
    networks = real_networks(plan, vm, configs)
    own_net = vpc_network(plan, vm.region)
    real_net = f" {tf_var(network_variable(vm.region))}" if vm.region in networks else ""
    lines = [
        "# geoha-addresses: slot -> real address, applied at every boot",
        f"net {own_net}{real_net}",
    ]
    lines += [f"self {n.address}" for n in vm.nodes]
    lines += [f"cidr {vpc_network(plan, r)} {tf_var(network_variable(r))}" for r in networks]
    found = peers(plan, vm, configs)
    hosts = host_entries(plan, vm, configs)
    if found or any(source != "self" for _, source in hosts):
        lines.append(f"dns {tf_var(NAME_SERVERS_VARIABLE)}")
    lines += [f"peer {n.address} {internal_name(plan.spec, n.name)}" for n in found]
    lines += [f"host {name} {source}" for name, source in hosts]
    if vm.kind is VmKind.API:
        lines.append(f"name {vm.nodes[0].name} {vm.region}-api")
    return "\n".join(lines) + "\n"


def unit(description: str, service: dict[str, str], after: list[str], oneshot: bool = False) -> str:
    """A systemd unit; long-running services restart whenever they exit."""
    needs = [u for u in after if u.startswith(("geoha-addresses", "geoha-certificates"))]
    lines = [
        "# rendered by geoha; changes are overwritten",
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        f"After=network-online.target {' '.join(after)}".rstrip(),
    ]
    lines += [f"Requires={' '.join(needs)}"] if needs else []
    lines += ["", "[Service]"]
    if oneshot:
        lines += ["Type=oneshot"]
    else:
        lines += ["Restart=always", "RestartSec=2", "LimitNOFILE=65536"]
    lines += [f"{key}={value}" for key, value in service.items()]
    lines += ["", "[Install]", "WantedBy=multi-user.target"]
    return "\n".join(lines) + "\n"


def node_unit(plan: Plan, node: Node) -> str:
    """The unit that runs a plan node: the command the local runtime starts, with the
    user, environment and stop its role's row gives (geoha.roles)."""
    role = ROLES[node.role]
    database = node.role is NodeRole.DATABASE
    service = {"User": cloud_user(node.role)}
    after = ["geoha-addresses.service"]
    if node.tls:  # it serves, and talks to its peers, with the certificate signed at boot
        after.append(f"{CERTIFICATES_SERVICE}.service")
    if database:  # Patroni reads the passwords from its environment, and needs the DCS
        service["EnvironmentFile"] = SECRETS_ENV
        after.append(f"{service_name(NodeRole.ETCD)}.service")
    if role.environment is Environment.CONFIG_FILE:
        service["EnvironmentFile"] = str(node.config_path)
    elif env := process_environment(plan, node):
        service["Environment"] = " ".join(f"{k}={v}" for k, v in env.items())
    service["ExecStart"] = " ".join(node.command)
    if database:  # restarting Patroni must not take PostgreSQL down with it
        service["KillMode"] = "process"
        # Patroni reloads its config on SIGHUP, and with it its REST API's and
        # PostgreSQL's certificates (`systemctl reload geoha-patroni`).
        service["ExecReload"] = "/usr/bin/kill -HUP $MAINPID"
    if role.stop.signal is not signal.SIGTERM:
        service["KillSignal"] = role.stop.signal.name
    if role.stop.in_unit:
        service["TimeoutStopSec"] = f"{role.stop.timeout_s:g}"
    return unit(f"geoha {node.role.value} {node.name}", service, after)


def addresses_unit() -> str:
    service = {
        "ExecStart": "/usr/bin/python3 /usr/local/sbin/geoha-addresses",
        "RemainAfterExit": "yes",
        "TimeoutStartSec": "infinity",
    }
    return unit("geoha: real addresses into the rendered configs", service, [], oneshot=True)


def schema_unit(plan: Plan, db: Node) -> str:
    """Roles, database, schema and migrations, applied by whichever node is primary."""
    service = {
        "User": cloud_user(NodeRole.DATABASE),
        "EnvironmentFile": SECRETS_ENV,
        "ExecStart": f"{VENV}/bin/python -m geoha.cloud.dbinit {db.config_path} "
        f"{plan.spec.database.name}",
        "Restart": "on-failure",
        "RestartSec": "10",
    }
    after = ["geoha-addresses.service", f"{service_name(NodeRole.DATABASE)}.service"]
    return unit("geoha: application schema on the primary", service, after, oneshot=True)


def write_file(
    path: str,
    content: str,
    mode: int,
    owner: str = "root:root",
    defer: bool = False,
    *,
    base64: bool = False,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": path,
        "owner": owner,
        "permissions": f"0{mode:o}",
        "content": content,
    }
    if base64:  # a multi-line PEM from a Terraform variable, filled in as one line
        entry["encoding"] = "b64"
    if defer:  # written after packages are installed, once the owner exists
        entry["defer"] = True
    return entry


def node_owner(node: Node) -> str:
    """owner:group of the node's folder and configs: its user and that user's group."""
    user = cloud_user(node.role)
    return f"{user}:{user}"


def owner_of(vm: Vm, file: File) -> str:
    for node in vm.nodes:
        if file.path.parent == node.dir:
            return node_owner(node)
    return "root:root"


def secret_files(plan: Plan, vm: Vm) -> list[dict[str, Any]]:
    """Files that carry secrets: only Terraform placeholders are rendered into them."""
    if vm.kind is VmKind.DATABASE:
        env = "\n".join(
            [
                f"PATRONI_SUPERUSER_PASSWORD={tf_var('superuser_password')}",
                f"PATRONI_REPLICATION_PASSWORD={tf_var('replication_password')}",
                f"GEOHA_APP_PASSWORD={tf_var('app_password')}",
                f"PATRONI_RESTAPI_PASSWORD={tf_var('rest_password')}",
            ]
        )
        return [write_file(SECRETS_ENV, env + "\n", 0o600)]
    if vm.kind is VmKind.API:
        spec = plan.spec
        pgpass = pgpass_file(
            plan.pgpass_path, ["*"], spec.database.port, spec.database.name, tf_var("app_password")
        )
        owner = node_owner(vm.nodes[0])  # the API instance reads it
        return [write_file(str(pgpass.path), pgpass.text, pgpass.mode, owner, defer=True)]
    if runs_watcher(plan, vm):  # systemd reads it as root for the watcher's unit
        env = f"TF_VAR_e2e_api_key={tf_var('e2e_api_key')}\n"
        env += f"TF_VAR_e2e_auth_token={tf_var('e2e_auth_token')}\n"
        return [write_file(WATCHER_ENV, env, 0o600)]
    return []


def signs_certificates(plan: Plan, vm: Vm) -> bool:
    """Whether the VM signs certificates at boot (it serves internal TLS)."""
    return plan.tls and vm.kind in (VmKind.DATABASE, VmKind.WITNESS)


def identities(plan: Plan, vm: Vm) -> list[Identity]:
    """The certificates the VM signs at boot: each node's that holds one (its names and
    its slot, which geoha-addresses makes real), and the watcher's client certificate."""
    found = [
        Identity(
            node.cert_path,
            node.key_path,
            cloud_user(node.role),
            (node.name, internal_name(plan.spec, node.name)),
            (node.address,),
            frozenset(USAGES),
        )
        for node in vm.nodes
        if ROLES[node.role].certificate is Certificate.NODE
    ]
    if runs_watcher(plan, vm):
        name = f"{plan.spec.name}-watcher"
        client = Identity(
            plan.client_cert_path,
            plan.client_key_path,
            SERVICE_USER,
            (name,),
            (),
            frozenset({"client"}),
        )
        found.append(client)
    return found


def tls_files(plan: Plan, vm: Vm) -> list[dict[str, Any]]:
    """The deployment's CA where the VM verifies servers; its key and the identity files
    (pristine, so geoha-addresses makes their slots real) where it signs certificates."""
    if not plan.tls or not TLS_VARIABLES[vm.kind]:
        return []
    files = [write_file(str(plan.ca_path), tf_var("ca_certificate"), 0o644, base64=True)]
    if signs_certificates(plan, vm):
        files.append(write_file(str(CA_KEY), tf_var("ca_key"), 0o600, base64=True))
        files += [
            write_file(
                f"{RENDERED_PREFIX}{IDENTITY_DIR}/{i.label}.identity",
                i.render(),
                0o644,
            )
            for i in identities(plan, vm)
        ]
    return files


def certificates_unit(plan: Plan) -> str:
    service = {
        "ExecStart": f"{VENV}/bin/python -m geoha.cloud.node_certificates {plan.ca_path}",
        "RemainAfterExit": "yes",
    }
    after = ["geoha-addresses.service"]
    return unit("geoha: this VM's certificates, for its real address", service, after, oneshot=True)


def watcher_config(plan: Plan) -> File:
    """What the witness's watcher watches (geoha.ops.fastfail_cloud): slots for addresses,
    as in every rendered config, and Terraform placeholders for the E2E node IDs."""
    spec = plan.spec
    nodes = {
        n.name: {"id": tf_var(node_id_variable(n)), "location": region_location(spec, n.region)}
        for n in plan.database_nodes
    }
    data = {
        "watched": json.loads(Watched.of(plan).to_json()),
        "e2e": {"project_id": tf_var("e2e_project_id"), "nodes": nodes},
    }
    return File(Path(WATCHER_CONFIG), json.dumps(data, indent=2) + "\n", 0o644)


def watcher_unit(plan: Plan) -> str:
    service = {
        "User": SERVICE_USER,
        "EnvironmentFile": WATCHER_ENV,
        "ExecStart": f"{VENV}/bin/python -m geoha.ops.fastfail_cloud {WATCHER_CONFIG}",
    }
    after = ["geoha-addresses.service", f"{service_name(NodeRole.ETCD)}.service"]
    if plan.tls:  # its client certificate towards etcd
        after.append(f"{CERTIFICATES_SERVICE}.service")
    return unit("geoha: the fast failover watcher (fence, then lease revoke)", service, after)


IMDS_GUARD_SERVICE = "geoha-imds-guard"
IMDS_ADDRESS = "169.254.169.254"
"""AWS's instance metadata service, which serves an instance's user data to whoever asks."""


def on_aws(plan: Plan, vm: Vm) -> bool:
    return plan.spec.regions[vm.region].cloud.on_aws


def guard_rule(address: str) -> str:
    """The iptables rule (without its -I/-C/-D) that refuses `address` to all but root."""
    return f"OUTPUT -d {address} -m owner ! --uid-owner 0 -j REJECT"


def guard_command(address: str) -> str:
    """A shell command adding `guard_rule(address)` once, however often it runs."""
    rule = guard_rule(address)
    return f"iptables -w -C {rule} 2>/dev/null || iptables -w -I {rule}"


def imds_guard_unit() -> str:
    """Only root may ask AWS's instance metadata service: the user data it serves holds
    the internal CA's key. Applied at every boot, before geoha-addresses and so before
    every node service; cloud-init, which needs the service at each boot, runs as root."""
    apply = guard_command(IMDS_ADDRESS)
    lines = [
        "# rendered by geoha; changes are overwritten",
        "[Unit]",
        "Description=geoha: only root reaches the instance metadata (it serves the user data)",
        "Before=geoha-addresses.service",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart=/bin/sh -c '{apply}'",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def boot_script() -> str:
    """geoha.cloud.boot_addresses as an executable for the VM's system python3."""
    return "#!/usr/bin/python3\n" + inspect.getsource(boot_addresses)


def vm_files(plan: Plan, vm: Vm) -> list[dict[str, Any]]:
    """Every file cloud-init writes on the VM."""
    configs = vm_configs(plan, vm)
    if runs_watcher(plan, vm):
        configs.append(watcher_config(plan))
    files = [
        write_file(f"{RENDERED_PREFIX}{f.path}", f.text, f.mode, owner_of(vm, f), defer=True)
        for f in configs
    ]
    files += secret_files(plan, vm)
    files += tls_files(plan, vm)
    files.append(write_file("/etc/geoha/addresses.map", address_map(plan, vm, configs), 0o644))
    files.append(write_file("/usr/local/sbin/geoha-addresses", boot_script(), 0o755))
    units = {"geoha-addresses": addresses_unit()}
    if on_aws(plan, vm):
        units[IMDS_GUARD_SERVICE] = imds_guard_unit()
    if signs_certificates(plan, vm):
        units[CERTIFICATES_SERVICE] = certificates_unit(plan)
    units |= {service_name(n.role): node_unit(plan, n) for n in vm.nodes}
    if runs_watcher(plan, vm):
        units[WATCHER_SERVICE] = watcher_unit(plan)
    if vm.kind is VmKind.DATABASE:
        units["geoha-app-schema"] = schema_unit(plan, vm.nodes[0])
        files.append(write_file(CREATECLUSTER_CONF, NO_MAIN_CLUSTER, 0o644))
    files += [write_file(f"/etc/systemd/system/{u}.service", t, 0o644) for u, t in units.items()]
    return files


def install_commands(plan: Plan, vm: Vm) -> list[list[str]]:
    """Software the packages do not bring: PostgreSQL 15 (PGDG) and the geoha source."""
    commands: list[list[str]] = []
    if vm.kind is VmKind.DATABASE:
        commands += [
            ["/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh", "-y"],
            ["apt-get", "install", "-y", "postgresql-15"],
        ]
    # A witness runs geoha's own code when it watches, or signs its certificate.
    watcher = runs_watcher(plan, vm) or signs_certificates(plan, vm)
    if vm.kind in (VmKind.DATABASE, VmKind.API, VmKind.WEB) or watcher:
        fetch = (
            f'set -eu; mkdir -p {SOURCE_DIR}; curl -fsSL "$0" '
            f"| tar -xz -C {SOURCE_DIR} --strip-components=1"
        )
        commands.append(["sh", "-c", fetch, tf_var("app_source_url")])
    if vm.kind in (VmKind.DATABASE, VmKind.API) or watcher:
        commands += [
            ["python3", "-m", "venv", VENV],
            [f"{VENV}/bin/pip", "install", "--quiet", SOURCE_DIR],
        ]
    if vm.kind is VmKind.WEB:
        dist = plan.web_dist
        copy = f"mkdir -p {dist} && cp -a {SOURCE_DIR}/app/web/dist/. {dist}/"
        commands.append(["sh", "-c", copy])
    return commands


def start_commands(
    vm: Vm, extra_services: tuple[str, ...] = (), signs: bool = False
) -> list[list[str]]:
    """Node folders with their owners, then the services (started now unless a template)."""
    commands: list[list[str]] = []
    for node in vm.nodes:
        user, group = node_owner(node).split(":")
        commands.append(["install", "-d", "-o", user, "-g", group, "-m", "0700", str(node.dir)])
    packaged = {VmKind.DATABASE: "etcd", VmKind.WITNESS: "etcd", VmKind.WEB: "caddy"}
    if vm.kind in packaged:  # the distribution's own unit would run a second, default instance
        commands.append(["systemctl", "disable", "--now", f"{packaged[vm.kind]}.service"])
    services = ["geoha-addresses.service"]
    services += [f"{CERTIFICATES_SERVICE}.service"] if signs else []
    services += [f"{service_name(n.role)}.service" for n in vm.nodes]
    if vm.kind is VmKind.DATABASE:
        services.append("geoha-app-schema.service")
    services += [f"{s}.service" for s in extra_services]
    commands += [["systemctl", "daemon-reload"], ["systemctl", "enable", *services]]
    if not vm.template:
        commands.append(["systemctl", "start", "--no-block", *services])
    return commands


STOP_AT_FIRST_FAILURE = "set -e"
"""First line of runcmd: cloud-init runs the list as one sh script, which otherwise goes on
past a failed step (and a template would say `built`, to be saved half installed)."""
BUILD_STATUS_DIR = "/run/geoha-build"
"""A template's build status (tmpfs: not imaged): `building`, then `built` or `failed`."""
BUILD_STATUS_PORT = e2e_api.BUILD_STATUS_PORT
"""Where a template serves its build status while it builds (security group: admin_cidr only);
the module's helper reads it (`e2e_api.py wait-built`) before it powers the template off."""
BUILD_STATUS_UNIT = "geoha-build-status"


def build_status_commands() -> tuple[list[str | list[str]], list[str | list[str]]]:
    """What a template runs first and last: a transient status server (a systemd-run unit,
    so nothing of it is imaged) and an EXIT trap that says `failed` unless the last step
    said `built` — a positive signal, unlike the power state."""
    status = f"{BUILD_STATUS_DIR}/status"
    first: list[str | list[str]] = [
        ["install", "-d", "-m", "0755", BUILD_STATUS_DIR],
        ["sh", "-c", f"echo building > {status}"],
        f"trap 'echo failed > {status}' EXIT",
        [
            "systemd-run",
            f"--unit={BUILD_STATUS_UNIT}",
            "--property=DynamicUser=yes",  # a throwaway user: it only reads the status
            "/usr/bin/python3",
            "-m",
            "http.server",
            str(BUILD_STATUS_PORT),
            "--directory",
            BUILD_STATUS_DIR,
        ],
    ]
    last: list[str | list[str]] = [
        ["sync"],
        "trap - EXIT",
        ["sh", "-c", f"echo built > {status}"],
    ]
    return first, last


def self_power_off() -> dict[str, Any]:
    """A built template shuts itself down cleanly (cloud-init's power_state), a while
    after it said `built`: the helper reads that first, then waits for it to be off (and
    asks E2E to power it off only if it is not). Never after a failed build."""
    return {
        "mode": "poweroff",
        "delay": f"+{e2e_api.SELF_POWER_OFF_DELAY_MIN}",
        "condition": ["grep", "-qx", "built", f"{BUILD_STATUS_DIR}/status"],
        "message": "geoha: template built; Terraform saves it as the scaler group's image",
    }


def packages(plan: Plan, vm: Vm) -> list[str]:
    """The VM's packages; a witness that runs geoha's own code (it watches, or signs its
    certificate) needs what that takes."""
    wanted = PACKAGES[vm.kind]
    if runs_watcher(plan, vm) or signs_certificates(plan, vm):
        wanted = wanted + [p for p in WATCHER_PACKAGES if p not in wanted]
    if on_aws(plan, vm):
        wanted = [*wanted, "iptables"]
    return wanted


def cloud_config(plan: Plan, vm: Vm) -> dict[str, Any]:
    runcmd: list[str | list[str]] = [STOP_AT_FIRST_FAILURE]
    if on_aws(plan, vm):  # first of all: the metadata service serves the CA's key
        runcmd.append(["systemctl", "enable", "--now", f"{IMDS_GUARD_SERVICE}.service"])
    first, last = build_status_commands() if vm.template else ([], [])
    watcher = runs_watcher(plan, vm)
    runcmd += first
    runcmd += install_commands(plan, vm)
    runcmd += start_commands(
        vm, (WATCHER_SERVICE,) if watcher else (), signs_certificates(plan, vm)
    )
    runcmd += last
    config: dict[str, Any] = {
        "users": ["default", {"name": SERVICE_USER, "system": True, "shell": "/usr/sbin/nologin"}],
        "package_update": True,
        "packages": packages(plan, vm),
        "write_files": vm_files(plan, vm),
        "runcmd": runcmd,
    }
    if vm.template:
        config["power_state"] = self_power_off()
    return config


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the configs read as they are on disk."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def terraform_template(text: str, variables: tuple[str, ...]) -> str:
    """Escape Terraform template syntax, then turn the sentinels into `${name}` placeholders."""
    text = text.replace("${", "$${").replace("%{", "%%{")
    for name in variables:
        text = text.replace(tf_var(name), "${" + name + "}")
    if "@@geoha-tf:" in text:
        raise ValueError(f"a placeholder outside {variables} was rendered")
    return text


def header(vm: Vm, variables: tuple[str, ...]) -> str:
    names = ", ".join(variables) or "none"
    lines = [
        "#cloud-config",
        f"# geoha {vm.kind.value} VM {vm.name} (region {vm.region}); rendered by geoha.",
        f"# A Terraform template (templatefile); its variables: {names}.",
    ]
    return "\n".join(lines) + "\n"


def render_vm(plan: Plan, vm: Vm) -> str:
    """The VM's cloud-init file (a Terraform template)."""
    body = yaml.dump(cloud_config(plan, vm), Dumper=_LiteralDumper, sort_keys=False, width=100)
    variables = template_variables(plan, vm)  # renders the VM's configs: once is enough
    return terraform_template(header(vm, variables) + body, variables)


def cloud_init_name(vm: Vm) -> str:
    return f"{vm.name}.yaml"


def render_cloud_init(plan: Plan, folder: str = "") -> list[File]:
    """One cloud-init file per VM, named after it (`delhi-db.yaml`, `delhi-web.yaml`, ...)."""
    base = Path(folder)
    return [File(base / cloud_init_name(vm), render_vm(plan, vm), 0o644) for vm in cloud_vms(plan)]
