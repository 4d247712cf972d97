"""Commands that say how to reach the local deployment: open, ca, dsn."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from cryptography import x509

from geoha.commands.common import load, region_urls, say
from geoha.data import cluster
from geoha.errors import EXIT_OK, BadInput, GeohaError
from geoha.plan import Node, NodeRole, Plan
from geoha.render.files import write_files
from geoha.render.haproxy import TLS_PEM, admin_socket
from geoha.roles import ROLES, Certificate
from geoha.runtime.certificates import issue_node_certificate, issue_server_certificate
from geoha.runtime.kinds import kinds
from geoha.runtime.process import read_record
from geoha.traffic.lb_admin import LbAdminError, replace_certificate
from geoha.traffic.tls import ca_files, new_ca


def cmd_open(args: argparse.Namespace) -> int:
    _, plan = load(args)
    regions = [args.region] if args.region else list(plan.spec.data_regions)
    for region in regions:
        if region not in plan.spec.data_regions:
            raise BadInput(
                f"REGION: a data region ({', '.join(plan.spec.data_regions)}) (got {region!r})"
            )
        http, https = region_urls(plan, region)
        print(http if args.region else f"{region}: {http}  {https}")
    return EXIT_OK


def cmd_ca(args: argparse.Namespace) -> int:
    _, plan = load(args)
    if args.cloud is not None:
        return new_cloud_ca(plan, Path(args.cloud))
    path = plan.ca_path
    if not path.exists():
        raise GeohaError(f"no CA yet ({path}): it is created by `geoha up`")
    if args.renew:
        return renew_certificates(plan)
    if args.path:
        print(path)
    else:
        print(path.read_text(), end="")
    return EXIT_OK


def new_cloud_ca(plan: Plan, folder: Path) -> int:
    """A CA of its own for the cloud deployment, written where the user says (never over
    an existing one: replacing a CA would orphan every certificate it signed)."""
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    there = [str(p) for p in (cert_path, key_path) if p.exists()]
    if there:
        raise BadInput(f"--cloud: {', '.join(there)} already exist; a new CA goes elsewhere")
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"--cloud: {folder} is not a folder")
    write_files(ca_files(new_ca(f"geoha {plan.spec.name} cloud CA"), cert_path, key_path))
    say(f"cloud CA: {cert_path} (certificate) and {key_path} (key, 0600); before terraform:")
    say(f'  export TF_VAR_internal_ca_certificate="$(cat {cert_path})"')
    say(f'  export TF_VAR_internal_ca_key="$(cat {key_path})"')
    return EXIT_OK


def renew_certificates(plan: Plan) -> int:
    """A new certificate for every node that holds one. A running frontend LB swaps it in
    through its admin socket; a running Patroni is sent SIGHUP, so its REST API and its
    PostgreSQL load theirs; etcd reads its files at each new connection. Connections go
    on; a stopped node reads its certificate at its next start."""
    by_role = kinds()
    for node in plan.nodes:
        match ROLES[node.role].certificate:
            case Certificate.PUBLIC:
                pem = issue_server_certificate(plan, node)
                used = swap_into_lb(node, pem)
            case Certificate.NODE if node.tls:
                issue_node_certificate(plan, node, by_role[node.role].owner())
                pem = node.cert_path.read_text(encoding="utf-8")
                used = reload_node(node)
            case _:
                continue
        until = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc
        say(f"{node.name}: new certificate, valid until {until:%Y-%m-%d}; {used}")
    return EXIT_OK


def swap_into_lb(node: Node, pem: str) -> str:
    socket_path = Path(admin_socket(node))
    if not socket_path.exists():
        return "used from its next start (not running)"
    try:
        replace_certificate(socket_path, node.dir / TLS_PEM, pem)
    except LbAdminError as exc:
        return f"used from its next start (the running LB refused it: {exc})"
    return "in use now, without a restart"


def reload_node(node: Node) -> str:
    if node.role is not NodeRole.DATABASE:
        return "in use for every new connection (etcd reads it at each one)"
    record = read_record(node.dir)
    if record is None or not record.alive():
        return "used from its next start (not running)"
    os.kill(record.pid, signal.SIGHUP)  # Patroni reloads its REST API's and PostgreSQL's
    return "in use now: Patroni and PostgreSQL reloaded, without a restart"


def cmd_dsn(args: argparse.Namespace) -> int:
    _, plan = load(args)
    print(cluster.dsn(plan, args.region, args.write))
    return EXIT_OK
