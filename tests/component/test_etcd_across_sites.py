"""etcd across the internet, as the cloud plan runs it with a witness on AWS: real etcd
members, from geoha's own renderer, dialled by names that each member resolves its own
way, form one cluster.

Each member runs in a mount namespace of its own, with an /etc/hosts of its own (as
geoha-addresses writes it on each VM): the data regions resolve each other's names to
their "private" addresses, the witness resolves theirs to other addresses (stand-ins for
their public ones), where they listen too, as a data region's member listens on every
address. etcd derives member and cluster IDs from the URLs as written, so the members
agree although no two of them resolve every name alike; had the witness written a peer's
URL with the address it reaches it at, as a per-site address would, its cluster ID would
differ from the others' and it would never join ("cluster ID mismatch").

On one machine every connection comes from 127.0.0.1, so the certificates name that
address too: the check etcd makes of a peer's source against its certificate's names
(resolved on the receiving VM) is exercised in the cloud, not here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from geoha.cloud.vms import cloud_node
from geoha.plan import Node, Plan, Tools, expand
from geoha.render.etcd import render_etcd
from geoha.render.files import File, write_files
from geoha.spec import parse_spec
from geoha.traffic.tls import ca_files, issue, new_ca

TIMEOUT_S = 60.0
SUDO = [] if os.geteuid() == 0 else ["sudo", "-n"]
SITES = {
    "regions": {
        "delhi": {"role": "primary", "cidr": "10.10.0.0/16", "local_net": "127.141.0.0/16"},
        "chennai": {"role": "replica", "cidr": "10.20.0.0/16", "local_net": "127.142.0.0/16"},
        "mumbai": {
            "role": "witness",
            "cidr": "10.30.0.0/16",
            "local_net": "127.143.0.0/16",
            "cloud": {"provider": "aws", "location": "ap-south-1"},
        },
    }
}
"""The reference topology (its witness on AWS) on loopback nets no other test, and no
`geoha up`, uses."""
PUBLIC = {"delhi": "127.141.6.9", "chennai": "127.142.6.9"}
"""Where the witness reaches each data region's member: not the address the other data
region uses (its slot), as a VM's public address is not its private one."""


def free_port(address: str = "0.0.0.0") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def sites(tmp_path: Path) -> Plan:
    """The reference's three etcd members, laid out on loopback under `tmp_path` and
    adjusted as the cloud plan does (names; data regions listening on every address),
    each with ports of its own (the data regions' listen on every address)."""
    spec = parse_spec(SITES)
    local = expand(spec, tmp_path, Tools.discover())
    nodes = []
    for node in local.etcd_nodes:
        ports = {port: free_port() for port in node.ports}
        nodes.append(dataclasses.replace(cloud_node(spec, node), ports=ports))
    return dataclasses.replace(local, nodes=tuple(nodes))


def hosts_file(plan: Plan, member: Node) -> str:
    """The member's own /etc/hosts: its name at its own address, a peer's at its slot from
    inside E2E, at its public stand-in from the witness."""
    witness = member.region not in plan.spec.data_regions
    lines = ["127.0.0.1 localhost"]
    for node in plan.etcd_nodes:
        address = PUBLIC.get(node.region, node.address) if witness else node.address
        lines.append(f"{address} {node.host}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def members(tmp_path: Path) -> Iterator[tuple[Plan, Path]]:
    """The three members running, each in its own mount namespace; stopped after."""
    plan = sites(tmp_path)
    ca = new_ca("geoha-test-ca")
    ca_pem = tmp_path / "ca.pem"
    write_files(ca_files(ca, ca_pem, tmp_path / "ca.key"), None)
    plan = dataclasses.replace(
        plan, nodes=tuple(dataclasses.replace(n, ca=ca_pem) for n in plan.nodes)
    )
    client = issue(ca, ["geoha-test-client"], [], server=False, client=True)
    write_files(
        [File(tmp_path / "client.crt", client[0]), File(tmp_path / "client.key", client[1], 0o600)],
        None,
    )
    started: list[subprocess.Popen[bytes]] = []
    try:
        for node in plan.etcd_nodes:
            assert node.host is not None
            # What the cloud VM signs at boot (its names, its own address), and 127.0.0.1: on
            # one machine every connection comes from there, and etcd checks a peer's source.
            addresses = [node.address, "127.0.0.1"]
            cert, key = issue(ca, [node.name, node.host], addresses, server=True, client=True)
            hosts = node.dir / "hosts"
            write_files(
                [
                    File(node.cert_path, cert, 0o644),
                    File(node.key_path, key, 0o600),
                    File(hosts, hosts_file(plan, node), 0o644),
                    *render_etcd(plan, node),
                ],
                None,
            )
            command = (
                f"mount --bind {hosts} /etc/hosts && exec {Tools.discover().etcd} "
                f"--config-file {node.config_path}"
            )
            log = (node.dir / "etcd.log").open("wb")
            started.append(
                subprocess.Popen(
                    [*SUDO, "unshare", "--mount", "--propagation", "private", "sh", "-c", command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield plan, tmp_path
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def member_list(node: Node, tmp_path: Path) -> dict[str, Any]:
    """The cluster's members as one member reports them (its own address, dialled directly)."""
    tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    tls.load_cert_chain(str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
    tls.check_hostname = False  # dialled by address here; the members dial by name
    url = f"https://{node.address}:{node.ports['client']}/v3/cluster/member/list"
    response = httpx.post(url, json={}, verify=tls, timeout=5)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def healthy(node: Node) -> bool:
    try:
        response = httpx.get(node.url("health", "/health"), timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("health") == "true"


def test_members_agree_on_names_each_resolves_its_own_way(
    members: tuple[Plan, Path],
) -> None:
    plan, tmp_path = members
    nodes = plan.etcd_nodes
    deadline = time.monotonic() + TIMEOUT_S
    while not all(healthy(n) for n in nodes):
        if time.monotonic() > deadline:
            logs = {n.name: (n.dir / "etcd.log").read_text()[-2000:] for n in nodes}
            pytest.fail(f"no healthy cluster in {TIMEOUT_S:.0f} s: {json.dumps(logs, indent=1)}")
        time.sleep(0.5)
    views = [member_list(n, tmp_path) for n in nodes]
    assert len({v["header"]["cluster_id"] for v in views}) == 1  # one cluster, not three
    expected = sorted((n.name, f"https://{n.host}:{n.ports['peer']}") for n in nodes)
    for view in views:
        members = sorted((m["name"], *m["peerURLs"]) for m in view["members"])
        assert members == expected
    # The witness knows the data regions only by their "public" stand-ins.
    witness = next(n for n in nodes if n.region not in plan.spec.data_regions)
    assert "127.141.6.1" not in hosts_file(plan, witness)
