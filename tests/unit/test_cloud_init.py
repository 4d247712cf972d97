"""cloud-init of every cloud VM: valid #cloud-config, the local renderers' configs, no secrets.

Golden files pin the output: regenerate with `make golden`
(GEOHA_UPDATE_GOLDEN=1), then review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dnslib import QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]

from geoha.cloud import boot_addresses
from geoha.cloud.cloudinit import (
    RENDERED_PREFIX,
    SECRET_PLACEHOLDERS,
    TEMPLATE_VARIABLES,
    WATCHER_CONFIG,
    WATCHER_ENV,
    identities,
    render_cloud_init,
    render_vm,
    runs_watcher,
    terraform_template,
    tf_var,
)
from geoha.cloud.dbinit import local_node, secrets_from_environment
from geoha.cloud.node_certificates import IDENTITY_DIR
from geoha.cloud.vms import (
    CLOUD_RUN_DIR,
    CLOUD_TOOLS,
    E2E_LB_HTTP_PORT,
    Vm,
    VmKind,
    cloud_plan,
    cloud_vms,
)
from geoha.db_access import Secrets
from geoha.plan import NodeRole, Plan, expand
from geoha.render.api import render_api
from geoha.render.caddy import render_caddy
from geoha.render.etcd import render_etcd
from geoha.render.files import File
from geoha.render.patroni import render_patroni
from geoha.spec import Spec, load_spec, parse_spec
from tests.unit.cloud_specs import E2E_WITNESS, EXTERNAL_WITNESS

GOLDEN = Path(__file__).parent.parent / "golden" / "cloud" / "cloud-init"
UPDATE = os.environ.get("GEOHA_UPDATE_GOLDEN") == "1"
FAKE = Secrets(superuser="S" * 32, replication="R" * 32, app="A" * 32, rest="P" * 32)
SPEC_SECRETS = {
    "superuser_password": "fake-superuser-7c1d0a93b5e2",
    "replication_password": "fake-replicator-0e9f4b27c6a1",
    "app_password": "fake-application-58d3e1a0f7b4",
}


def reference() -> Plan:
    return cloud_plan(load_spec(None))


def parsed(text: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(text)
    return body


def rendered_configs(text: str) -> dict[str, str]:
    """Live path -> content of every config the VM keeps pristine under /etc/geoha/rendered."""
    return {
        f["path"].removeprefix(RENDERED_PREFIX): f["content"]
        for f in parsed(text)["write_files"]
        if f["path"].startswith(RENDERED_PREFIX)
    }


@pytest.mark.parametrize("file", render_cloud_init(reference()), ids=lambda f: f.path.name)
def test_cloud_init_matches_golden(file: File) -> None:
    golden = GOLDEN / file.path.name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(file.text)
    assert golden.exists(), f"no golden file {golden}: run `make golden`"
    assert file.text == golden.read_text(), f"{file.path.name} differs from its golden file"


def test_one_file_per_vm_and_role() -> None:
    names = [f.path.name for f in render_cloud_init(reference())]
    assert names == [
        "delhi-db.yaml",
        "delhi-web.yaml",
        "delhi-api.yaml",
        "chennai-db.yaml",
        "chennai-web.yaml",
        "chennai-api.yaml",
        "mumbai-etcd.yaml",
    ]


def test_every_file_is_cloud_config_yaml() -> None:
    for file in render_cloud_init(reference()):
        assert file.text.startswith("#cloud-config\n"), file.path
        body = parsed(file.text)
        assert {"packages", "write_files", "runcmd"} <= set(body), file.path
        assert "haproxy" not in body["packages"]  # E2E's managed LBs play both LB roles


def filled(text: str) -> str:
    """What Terraform's templatefile makes of a file: placeholders filled, escapes undone."""
    text = re.sub(r"(?<!\$)\$\{([a-z0-9_]+)\}", lambda m: f"sample-{m.group(1)}", text)
    return text.replace("$${", "${").replace("%%{", "%{")


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    """cloud-init's own validation of a cloud-config file (`cloud-init schema`)."""
    cloud_init = shutil.which("cloud-init")
    assert cloud_init, "cloud-init is not installed: run scripts/setup.sh"
    command = [cloud_init, "schema", "--config-file", str(path)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("spec_data", [{}, EXTERNAL_WITNESS], ids=["reference", "external"])
def test_cloud_init_accepts_every_file(tmp_path: Path, spec_data: dict[str, Any]) -> None:
    """Each file as Terraform fills it passes cloud-init's schema check."""
    for file in render_cloud_init(cloud_plan(parse_spec(spec_data))):
        path = tmp_path / file.path.name
        path.write_text(filled(file.text), encoding="utf-8")
        done = schema_check(path)
        assert done.returncode == 0, f"{file.path}: {done.stdout}{done.stderr}"
        assert f"Valid cloud-config: {path}" in done.stdout


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("#cloud-config\npower_state:\n  mode: sleep\n", encoding="utf-8")
    done = schema_check(path)
    assert done.returncode != 0
    assert "power_state.mode" in done.stdout + done.stderr


def local_twin(spec: Spec, cloud: Plan) -> Plan:
    """The same deployment as the local runtime lays it out, with the cloud VM's paths,
    and the names and listening addresses the cloud plan gives etcd members when one is
    across the internet (geoha.cloud.vms.cloud_node): the rest must be the renderers'."""
    local = expand(spec, CLOUD_RUN_DIR, CLOUD_TOOLS, cloud=False)
    nodes = tuple(
        dataclasses.replace(n, host=cloud.node(n.name).host, listen=cloud.node(n.name).listen)
        for n in local.nodes
    )
    return dataclasses.replace(local, nodes=nodes)


def local_render(local: Plan, node_name: str) -> File:
    node = local.node(node_name)
    if node.role is NodeRole.ETCD:
        return render_etcd(local, node)[0]
    if node.role is NodeRole.DATABASE:
        nets = tuple(str(r.loopback_net) for r in local.spec.data_regions.values())
        return render_patroni(local, node, FAKE, local=False, app_networks=nets)[0]
    if node.role is NodeRole.API:
        return render_api(local, node)[0]
    return render_caddy(local, node)[0]


def address_normaliser(local: Plan, cloud: Plan) -> dict[str, str]:
    """Local address -> cloud address of every node (and region network); the backend LB's
    endpoint too, since E2E's LB listens on port 80."""
    mapping = {n.address: cloud.node(n.name).address for n in local.nodes}
    for name, region in local.spec.data_regions.items():
        mapping[str(region.loopback_net)] = region.cidr
        be_local = local.only(name, NodeRole.BACKEND_LB)
        be_cloud = cloud.only(name, NodeRole.BACKEND_LB)
        assert be_cloud.ports["http"] == E2E_LB_HTTP_PORT
        mapping[be_local.endpoint("http")] = be_cloud.endpoint("http")
    return mapping


def secrets_normaliser() -> dict[str, str]:
    """The Patroni placeholders stand where a local render has the passwords."""
    return {
        SECRET_PLACEHOLDERS.superuser: FAKE.superuser,
        SECRET_PLACEHOLDERS.replication: FAKE.replication,
        SECRET_PLACEHOLDERS.rest: FAKE.rest,
    }


@pytest.mark.parametrize(
    "spec_data",
    [{}, {"traffic": {"api_route": "via-web"}}, E2E_WITNESS],
    ids=["reference", "via-web", "e2e-witness"],
)
def test_configs_are_the_local_renderers_output_apart_from_addresses(
    spec_data: dict[str, Any],
) -> None:
    spec = parse_spec(spec_data)
    cloud = cloud_plan(spec)
    local = local_twin(spec, cloud)
    addresses, secrets = address_normaliser(local, cloud), secrets_normaliser()
    checked = 0
    for vm in cloud_vms(cloud):
        configs = rendered_configs(render_vm(cloud, vm))
        watcher = {WATCHER_CONFIG} if runs_watcher(cloud, vm) else set()
        certificates = {f"{IDENTITY_DIR}/{i.label}.identity" for i in identities(cloud, vm)}
        expected = {str(n.config_path) for n in vm.nodes} | watcher | certificates
        assert set(configs) == expected, vm.name
        for node in vm.nodes:
            cloud_text = boot_addresses.substitute(configs[str(node.config_path)], secrets)
            local_file = local_render(local, node.name)
            assert local_file.path == node.config_path
            assert boot_addresses.substitute(local_file.text, addresses) == cloud_text, node.name
            checked += 1
    assert checked == 9  # 2 x (patroni, etcd, api, caddy) + the witness's etcd


def test_patroni_passwords_come_from_the_environment() -> None:
    plan = reference()
    db_vm = next(vm for vm in cloud_vms(plan) if vm.kind is VmKind.DATABASE)
    text = render_vm(plan, db_vm)
    files = {f["path"]: f for f in parsed(text)["write_files"]}
    patroni = yaml.safe_load(rendered_configs(text)["/var/lib/geoha/nodes/delhi-db/patroni.yml"])
    auth = patroni["postgresql"]["authentication"]
    assert auth["superuser"]["password"] == SECRET_PLACEHOLDERS.superuser
    env = files["/etc/geoha/secrets.env"]
    assert env["permissions"] == "0600"
    assert "PATRONI_SUPERUSER_PASSWORD=${superuser_password}" in env["content"]
    assert "PATRONI_REPLICATION_PASSWORD=${replication_password}" in env["content"]
    unit = files["/etc/systemd/system/geoha-patroni.service"]["content"]
    assert "EnvironmentFile=/etc/geoha/secrets.env" in unit
    assert "KillMode=process" in unit and "Restart=always" in unit


def test_no_secret_of_the_spec_reaches_a_cloud_init_file() -> None:
    spec = parse_spec({"database": SPEC_SECRETS})
    for file in render_cloud_init(cloud_plan(spec)):
        for value in SPEC_SECRETS.values():
            assert value not in file.text, file.path


def test_placeholders_are_exactly_the_vm_kinds_template_variables() -> None:
    plan = reference()
    for vm in cloud_vms(plan):
        text = render_vm(plan, vm)
        for name in ("superuser_password", "replication_password", "app_password"):
            assert (("${" + name + "}") in text) == (name in TEMPLATE_VARIABLES[vm.kind]), vm.name
        assert "@@geoha-tf:" not in text


def test_terraform_template_syntax_is_escaped() -> None:
    text = f"a ${{b}} %{{ if c }} {tf_var('d')}"
    assert terraform_template(text, ("d",)) == "a $${b} %%{ if c } ${d}"
    with pytest.raises(ValueError):
        terraform_template(tf_var("e"), ("d",))


def address_map(plan: Plan, vm: Vm) -> list[str]:
    files = {f["path"]: f for f in parsed(render_vm(plan, vm))["write_files"]}
    content: str = files["/etc/geoha/addresses.map"]["content"]
    return [line for line in content.splitlines() if not line.startswith("#")]


DELHI_DB_MAP = [
    "net 10.10.0.0/16 ${network_delhi}",
    "self 10.10.5.1",
    "self 10.10.6.1",
    "cidr 10.10.0.0/16 ${network_delhi}",
    "cidr 10.20.0.0/16 ${network_chennai}",
    "dns ${internal_name_servers}",
]
"""How delhi-db's address map begins: its own slots and networks, and where it asks."""


def test_address_maps_name_only_the_peers_a_vm_needs() -> None:
    plan = cloud_plan(parse_spec(E2E_WITNESS))
    vms = {vm.name: vm for vm in cloud_vms(plan)}
    # The database's pg_hba names both data regions' layout networks: each becomes the
    # network E2E gave that region's VPC. Peers are asked of the internal zone's servers.
    assert address_map(plan, vms["delhi-db"]) == [
        *DELHI_DB_MAP,
        "peer 10.20.6.1 chennai-etcd.internal.geoha.test",
        "peer 10.30.6.1 mumbai-etcd.internal.geoha.test",
        "peer 10.20.5.1 chennai-db.internal.geoha.test",
    ]
    assert address_map(plan, vms["chennai-web"]) == [
        "net 10.20.0.0/16 ${network_chennai}",
        "self 10.20.2.1",
        "cidr 10.20.0.0/16 ${network_chennai}",
        "dns ${internal_name_servers}",
        "peer 10.20.3.1 chennai-be.internal.geoha.test",
    ]
    assert address_map(plan, vms["delhi-api"])[-1] == "name delhi-api-1 delhi-api"


def test_with_a_witness_across_the_internet_each_vm_resolves_the_etcd_names_its_own_way() -> None:
    plan = reference()  # the witness is an AWS instance
    vms = {vm.name: vm for vm in cloud_vms(plan)}
    # Inside E2E: the peers' private addresses, and the witness's Elastic IP, from the
    # internal zone; the VM's own name is its own address.
    assert address_map(plan, vms["delhi-db"]) == [
        *DELHI_DB_MAP,
        "peer 10.20.5.1 chennai-db.internal.geoha.test",
        "host delhi-etcd.internal.geoha.test self",
        "host chennai-etcd.internal.geoha.test chennai-etcd.internal.geoha.test",
        "host mumbai-etcd.internal.geoha.test mumbai-etcd.internal.geoha.test",
    ]
    # On the witness: a data region's member is its database VM's public address (its
    # connections come from there, and etcd checks a peer's certificate names against
    # that address). Its VPC is the region's `cidr` itself: the layout network is the real one.
    assert address_map(plan, vms["mumbai-etcd"]) == [
        "net 10.30.0.0/16",
        "self 10.30.6.1",
        "dns ${internal_name_servers}",
        "host delhi-etcd.internal.geoha.test delhi-db.public.internal.geoha.test",
        "host chennai-etcd.internal.geoha.test chennai-db.public.internal.geoha.test",
        "host mumbai-etcd.internal.geoha.test self",
    ]
    # What every member dials is the same name everywhere (etcd derives member IDs from
    # the URLs); where it listens is the VM's own.
    delhi = yaml.safe_load(
        rendered_configs(render_vm(plan, vms["delhi-db"]))[
            "/var/lib/geoha/nodes/delhi-etcd/etcd.yml"
        ]
    )
    witness = yaml.safe_load(
        rendered_configs(render_vm(plan, vms["mumbai-etcd"]))[
            "/var/lib/geoha/nodes/mumbai-etcd/etcd.yml"
        ]
    )
    assert (
        delhi["initial-cluster"]
        == witness["initial-cluster"]
        == ",".join(
            f"{r}-etcd=https://{r}-etcd.internal.geoha.test:2380"
            for r in ("delhi", "chennai", "mumbai")
        )
    )
    assert delhi["listen-peer-urls"] == "https://0.0.0.0:2380"
    assert witness["listen-peer-urls"] == "https://10.30.6.1:2380"
    assert witness["advertise-client-urls"] == "https://mumbai-etcd.internal.geoha.test:2379"


def test_templates_say_built_only_after_their_last_step_and_fixed_nodes_start_services() -> None:
    plan = reference()
    for vm in cloud_vms(plan):
        body = parsed(render_vm(plan, vm))
        starts = [c for c in body["runcmd"] if c[:2] == ["systemctl", "start"]]
        # cloud-init runs runcmd as one sh script: the first failed step ends it.
        assert body["runcmd"][0] == "set -e"
        if vm.template:
            assert "trap 'echo failed > /run/geoha-build/status' EXIT" in body["runcmd"][:5]
            server = next(c for c in body["runcmd"] if c[0] == "systemd-run")
            assert server[-3:] == ["8479", "--directory", "/run/geoha-build"]
            assert body["runcmd"][-3:] == [
                ["sync"],
                "trap - EXIT",
                ["sh", "-c", "echo built > /run/geoha-build/status"],
            ]
            # A clean shutdown, two minutes after `built` (the helper reads it first), and
            # never after a failed build.
            assert body["power_state"] == {
                "mode": "poweroff",
                "delay": "+2",
                "condition": ["grep", "-qx", "built", "/run/geoha-build/status"],
                "message": "geoha: template built; Terraform saves it as the scaler group's image",
            }
            assert starts == []
        else:
            assert "power_state" not in body
            assert not any("geoha-build" in str(c) for c in body["runcmd"])
            assert "geoha-addresses.service" in starts[0]


def test_a_template_build_says_failed_when_a_step_fails(tmp_path: Path) -> None:
    """The rendered runcmd of a template, run by sh as cloud-init runs it: its install steps
    stand in as `true`, or one `false`, and its status folder is a temporary one."""
    plan = reference()
    vm = next(vm for vm in cloud_vms(plan) if vm.template)
    runcmd = parsed(render_vm(plan, vm))["runcmd"]
    status = tmp_path / "status"

    def line(step: str | list[str], failing: bool) -> str:
        if isinstance(step, str):
            return step.replace("/run/geoha-build", str(tmp_path))
        if "geoha-build/status" in step[-1]:
            return step[-1].replace("/run/geoha-build", str(tmp_path))
        return "false" if failing else "true"

    for failing_step, expected in ((None, "built"), (len(runcmd) // 2, "failed")):
        script = "\n".join(line(step, i == failing_step) for i, step in enumerate(runcmd))
        subprocess.run(["sh", "-c", script], check=False)
        assert status.read_text().strip() == expected


def test_boot_addresses_substitutes_whole_addresses_only() -> None:
    text = (
        "a 10.10.5.1:5432 b 10.10.5.10 c 110.10.5.1 d 10.10.5.1/32 e GEOHA_INSTANCE=delhi-api-1\n"
    )
    mapping = {"10.10.5.1": "10.10.0.7", "delhi-api-1": "delhi-api-10-10-0-9"}
    assert boot_addresses.substitute(text, mapping) == (
        "a 10.10.0.7:5432 b 10.10.5.10 c 110.10.5.1 d 10.10.0.7/32 "
        "e GEOHA_INSTANCE=delhi-api-10-10-0-9\n"
    )


def test_boot_addresses_picks_the_address_in_the_region_network() -> None:
    assert boot_addresses.own_address("10.10.0.0/16", ["164.52.1.2", "10.10.0.23"]) == "10.10.0.23"
    with pytest.raises(LookupError):
        boot_addresses.own_address("10.10.0.0/16", ["164.52.1.2"])


def test_boot_addresses_writes_live_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered, root = tmp_path / "rendered", tmp_path / "root"
    source = rendered / "etc" / "x" / "api.env"
    source.parent.mkdir(parents=True)
    source.write_text("GEOHA_INSTANCE=delhi-api-1\nLISTEN=10.10.4.1:8080\nDB=10.10.5.1:5432\n")
    source.chmod(0o640)
    source.write_text(source.read_text() + "HBA=10.10.0.0/16 10.20.0.0/16 10.10.0.0/160\n")
    entries = boot_addresses.parse_map(
        "# map\nnet 10.10.0.0/16 172.16.4.0/23\nself 10.10.4.1\n"
        "peer 10.10.5.1 delhi-db.internal.x\nname delhi-api-1 delhi-api\n"
        "cidr 10.10.0.0/16 172.16.4.0/23\n"
        "cidr 10.20.0.0/16 172.16.8.0/23\ndns ns-1.example ns-2.example\n"
    )
    asked = []

    def resolve(name: str, servers: list[str]) -> str:
        asked.append(servers)
        return {"delhi-db.internal.x": "172.16.4.5"}[name]

    monkeypatch.setattr(boot_addresses, "resolve", resolve)
    written = boot_addresses.apply(entries, "172.16.4.9", rendered, root)
    assert written == [root / "etc" / "x" / "api.env"]
    assert written[0].read_text() == (
        "GEOHA_INSTANCE=delhi-api-172-16-4-9\nLISTEN=172.16.4.9:8080\nDB=172.16.4.5:5432\n"
        "HBA=172.16.4.0/23 172.16.8.0/23 10.10.0.0/160\n"
    )
    assert asked == [["ns-1.example", "ns-2.example"]]
    assert written[0].stat().st_mode & 0o777 == 0o640
    assert source.read_text().startswith("GEOHA_INSTANCE=delhi-api-1")  # pristine copy kept


def test_boot_addresses_keeps_its_own_block_of_etc_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered, root = tmp_path / "rendered", tmp_path / "root"
    rendered.mkdir()
    hosts = root / "etc" / "hosts"
    hosts.parent.mkdir(parents=True)
    hosts.write_text("127.0.0.1 localhost\n10.30.6.1 ip-10-30-6-1\n")
    hosts.chmod(0o644)
    entries = boot_addresses.parse_map(
        "net 10.30.0.0/16\nself 10.30.6.1\ndns ns-1.example\n"
        "host delhi-etcd.internal.x delhi-db.public.internal.x\n"
        "host mumbai-etcd.internal.x self\n"
    )
    answers = {"delhi-db.public.internal.x": "203.0.113.7"}
    monkeypatch.setattr(boot_addresses, "resolve", lambda name, servers: answers[name])
    assert boot_addresses.apply(entries, "10.30.6.1", rendered, root) == [hosts]
    block = [
        boot_addresses.HOSTS_BEGIN,
        "203.0.113.7 delhi-etcd.internal.x",
        "10.30.6.1 mumbai-etcd.internal.x",
        boot_addresses.HOSTS_END,
    ]
    assert hosts.read_text().splitlines() == [
        "127.0.0.1 localhost",
        "10.30.6.1 ip-10-30-6-1",
        *block,
    ]
    assert hosts.stat().st_mode & 0o777 == 0o644
    # At the next boot the block is replaced, not added to; the rest is kept.
    answers["delhi-db.public.internal.x"] = "203.0.113.8"
    hosts.write_text(hosts.read_text() + "192.0.2.1 added-later\n")
    boot_addresses.apply(entries, "10.30.6.1", rendered, root)
    assert hosts.read_text().splitlines() == [
        "127.0.0.1 localhost",
        "10.30.6.1 ip-10-30-6-1",
        "192.0.2.1 added-later",
        boot_addresses.HOSTS_BEGIN,
        "203.0.113.8 delhi-etcd.internal.x",
        "10.30.6.1 mumbai-etcd.internal.x",
        boot_addresses.HOSTS_END,
    ]


@pytest.fixture
def name_server() -> Iterator[int]:
    """A name server on loopback (dnslib) answering A for *.internal.x, NXDOMAIN otherwise;
    its answers use name compression, as Route 53's do."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = DNSRecord.parse(data)
            reply = query.reply()
            name = str(query.q.qname)
            if name.endswith(".internal.x."):
                reply.add_answer(RR(name, QTYPE.A, rdata=A("172.16.4.5"), ttl=60))
            else:
                reply.header.rcode = RCODE.NXDOMAIN
            sock.sendto(reply.pack(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def test_boot_addresses_asks_the_named_servers_directly(
    name_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert boot_addresses.ask("127.0.0.1", "delhi-db.internal.x", name_server) == "172.16.4.5"
    assert boot_addresses.ask("127.0.0.1", "nothing.example", name_server) is None
    monkeypatch.setattr(boot_addresses, "DNS_TIMEOUT_S", 0.2)
    assert boot_addresses.ask("127.0.0.1", "delhi-db.internal.x", closed_udp_port()) is None


def test_boot_addresses_takes_only_a_whole_answer_to_its_own_question() -> None:
    query = boot_addresses.dns_query("delhi-db.internal.x")
    request = DNSRecord.parse(query)
    reply = request.reply()
    reply.add_answer(RR("delhi-db.internal.x", QTYPE.A, rdata=A("172.16.4.5"), ttl=60))
    whole = reply.pack()
    assert boot_addresses.a_records(query, whole) == ["172.16.4.5"]
    assert boot_addresses.a_records(query, whole[:-2]) == []  # cut inside the address
    truncated = bytearray(whole)
    truncated[2] |= 0x02  # TC: the rest did not fit
    assert boot_addresses.a_records(query, bytes(truncated)) == []
    echoed = bytearray(whole)
    echoed[2] &= 0x7F  # QR clear: a query, not an answer
    assert boot_addresses.a_records(query, bytes(echoed)) == []
    other = DNSRecord.question("chennai-db.internal.x").reply()
    other.header.id = request.header.id
    other.add_answer(RR("chennai-db.internal.x", QTYPE.A, rdata=A("10.0.0.1"), ttl=60))
    assert boot_addresses.a_records(query, other.pack()) == []  # another question's answer


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dbinit_reads_the_live_patroni_config() -> None:
    plan = reference()
    db = plan.node("delhi-db")
    config = yaml.safe_load(render_patroni(plan, db, FAKE, local=False)[0].text)
    node, rest = local_node(config)
    assert (node.address, node.ports["postgres"], rest) == (
        "10.10.5.1",
        5432,
        "https://10.10.5.1:8008",
    )
    assert node.ca == plan.ca_path
    env = {
        "PATRONI_SUPERUSER_PASSWORD": "s" * 16,
        "PATRONI_REPLICATION_PASSWORD": "r" * 16,
        "GEOHA_APP_PASSWORD": "a" * 16,
        "PATRONI_RESTAPI_PASSWORD": "p" * 16,
    }
    assert secrets_from_environment(env) == Secrets("s" * 16, "r" * 16, "a" * 16, "p" * 16)


def test_systemd_units_restart_their_services() -> None:
    plan = reference()
    for vm in cloud_vms(plan):
        files = {f["path"]: f["content"] for f in parsed(render_vm(plan, vm))["write_files"]}
        units = {p: c for p, c in files.items() if p.startswith("/etc/systemd/system/")}
        long_running = [c for c in units.values() if "Type=oneshot" not in c]
        assert len(long_running) == len(vm.nodes) + runs_watcher(plan, vm), vm.name
        for content in long_running:
            assert "Restart=always" in content
            assert "Requires=geoha-addresses.service" in content


def test_only_root_on_the_aws_witness_reaches_the_metadata_that_holds_the_cas_key() -> None:
    plan = reference()
    for vm in cloud_vms(plan):
        body = parsed(render_vm(plan, vm))
        files = {f["path"]: f["content"] for f in body["write_files"]}
        unit = files.get("/etc/systemd/system/geoha-imds-guard.service")
        if vm.region != "mumbai":
            assert unit is None and "iptables" not in body["packages"], vm.name
            continue
        assert "iptables" in body["packages"]
        # Before anything else runs, and again at every boot before the node services.
        assert body["runcmd"][1] == ["systemctl", "enable", "--now", "geoha-imds-guard.service"]
        assert "Before=geoha-addresses.service" in unit
        assert "-d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT" in unit


def witness(plan: Plan) -> Vm:
    return next(vm for vm in cloud_vms(plan) if vm.kind is VmKind.WITNESS)


def test_the_witness_runs_the_fast_failover_watcher() -> None:
    plan = cloud_plan(parse_spec(E2E_WITNESS))
    vm = witness(plan)
    assert runs_watcher(plan, vm)
    text = render_vm(plan, vm)
    body = parsed(text)
    assert "python3-venv" in body["packages"] and "etcd-server" in body["packages"]
    files = {f["path"]: f for f in body["write_files"]}
    env = files[WATCHER_ENV]
    assert env["permissions"] == "0600" and env["owner"] == "root:root"
    assert env["content"] == (
        "TF_VAR_e2e_api_key=${e2e_api_key}\nTF_VAR_e2e_auth_token=${e2e_auth_token}\n"
    )
    unit = files["/etc/systemd/system/geoha-fastfail.service"]["content"]
    assert f"EnvironmentFile={WATCHER_ENV}" in unit and "User=geoha" in unit
    assert f"-m geoha.ops.fastfail_cloud {WATCHER_CONFIG}" in unit
    assert body["runcmd"][-1][:3] == ["systemctl", "start", "--no-block"]
    assert "geoha-fastfail.service" in body["runcmd"][-1]
    config = json.loads(rendered_configs(text)[WATCHER_CONFIG])
    assert config["e2e"] == {
        "project_id": "${e2e_project_id}",
        "nodes": {
            "delhi-db": {"id": "${node_id_delhi_db}", "location": "Delhi"},
            "chennai-db": {"id": "${node_id_chennai_db}", "location": "Chennai"},
        },
    }
    watched = config["watched"]
    assert watched["witness_region"] == "mumbai" and watched["policy"]["fast"] is True
    assert [e["name"] for e in watched["etcd"]] == ["delhi-etcd", "chennai-etcd", "mumbai-etcd"]
    assert [r for r, _ in watched["backends"]] == ["delhi", "chennai"]
    assert all(e["port"] == E2E_LB_HTTP_PORT for _, e in watched["backends"])
    address_map = files["/etc/geoha/addresses.map"]["content"]
    for slot, name in (("10.10.5.1", "delhi-db"), ("10.20.3.1", "chennai-be")):
        assert f"peer {slot} {name}.internal.geoha.test" in address_map


@pytest.mark.parametrize(
    "changes",
    [
        {"failover": {"fast": False}},
        EXTERNAL_WITNESS,
        {},  # the reference's witness is on AWS: the watcher powers VMs off through E2E
    ],
)
def test_no_watcher_when_the_fast_path_is_off_or_the_witness_is_not_on_e2e(
    changes: dict[str, Any],
) -> None:
    plan = cloud_plan(parse_spec(changes))
    vm = witness(plan)
    assert not runs_watcher(plan, vm)
    text = render_vm(plan, vm)
    assert "fastfail" not in text and "e2e_api_key" not in text
