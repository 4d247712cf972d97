"""The certificates a node holds, as its role says (geoha.roles.Certificate), issued
by the deployment's CA when its configs are rendered.

A NODE certificate names the node and its address and serves for both TLS server
and client use; a PUBLIC one (a frontend LB's) names its region's public names.
A certificate still valid for the same names, from the same CA, with more than
RENEW_BEFORE_DAYS left is kept; `renew` issues new ones regardless.
"""

from __future__ import annotations

import os

from geoha.plan import Node, Plan
from geoha.render.files import File, write_files
from geoha.render.haproxy import TLS_PEM
from geoha.render.patroni import LOCAL_SOURCE
from geoha.roles import ROLES, Certificate
from geoha.traffic.tls import CA, ensure_ca, issue, server_pem, valid_for

Owner = tuple[int, int] | None
"""Who owns a node's files: (uid, gid), or None for whoever writes them."""


def deployment_ca(plan: Plan) -> CA:
    """The deployment's CA, created on first use; its folder is readable by the nodes'
    users (the key in it is not)."""
    ca = ensure_ca(plan.tls_dir, plan.spec.name)
    os.chmod(plan.tls_dir, 0o755)
    return ca


def region_names(plan: Plan, region: str) -> list[str]:
    """DNS names a region's frontend LB answers for."""
    zone = plan.spec.dns.zone
    return [f"{region}.{zone}", plan.spec.dns.fqdn, zone, f"www.{zone}"]


def node_identity(plan: Plan, node: Node) -> tuple[list[str], list[str]]:
    """What a NODE certificate names: (DNS names, addresses), among them the name others
    dial it by where it has one (`host`). On one machine every loopback connection leaves
    from 127.0.0.1, and etcd checks a peer's source address against its certificate, so a
    local certificate names that too."""
    local = [] if plan.cloud else [LOCAL_SOURCE]
    names = [node.name] if node.host is None else [node.name, node.host]
    return names, [node.address, *local]


def issue_node_certificate(plan: Plan, node: Node, owner: Owner) -> None:
    names, addresses = node_identity(plan, node)
    cert, key = issue(deployment_ca(plan), names, addresses, server=True, client=True)
    node.cert_path.parent.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(node.cert_path.parent, *owner)
    os.chmod(node.cert_path.parent, 0o700)
    write_files([File(node.key_path, key, 0o600), File(node.cert_path, cert, 0o644)], owner)


def issue_server_certificate(plan: Plan, node: Node) -> str:
    """A new certificate (and key) for a frontend LB from the deployment's CA, written to
    its node folder (0600); returns the PEM (certificate, CA, key)."""
    pem = server_pem(deployment_ca(plan), region_names(plan, node.region), [node.address])
    write_files([File(node.dir / TLS_PEM, pem, 0o600)])
    return pem


def ensure_certificates(plan: Plan, node: Node, owner: Owner) -> None:
    """The node's certificate, issued if it has none still good."""
    match ROLES[node.role].certificate:
        case Certificate.NODE if node.tls:
            names, addresses = node_identity(plan, node)
            deployment_ca(plan)
            if not valid_for(node.cert_path, node.key_path, plan.ca_path, names, addresses):
                issue_node_certificate(plan, node, owner)
        case Certificate.PUBLIC:
            if not (node.dir / TLS_PEM).exists():
                issue_server_certificate(plan, node)
        case _:
            pass


def ensure_client_certificate(plan: Plan) -> None:
    """geoha's own client certificate (the controller's and the CLI's towards etcd)."""
    if not plan.tls:
        return
    name = f"{plan.spec.name}-controller"
    ca = deployment_ca(plan)
    if valid_for(plan.client_cert_path, plan.client_key_path, plan.ca_path, [name], []):
        return
    cert, key = issue(ca, [name], [], server=False, client=True)
    write_files([File(plan.client_key_path, key, 0o600), File(plan.client_cert_path, cert, 0o644)])
