"""Commands that say how to reach the local deployment: open, ca, dsn."""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from geoha.commands.common import load, region_urls, say
from geoha.data import cluster
from geoha.errors import EXIT_OK, BadInput, GeohaError
from geoha.plan import NodeRole, Plan
from geoha.render.haproxy import TLS_PEM, admin_socket
from geoha.runtime.certificates import issue_server_certificate
from geoha.traffic.lb_admin import LbAdminError, replace_certificate


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
    path = plan.run_dir / "tls" / "ca.pem"
    if not path.exists():
        raise GeohaError(f"no CA yet ({path}): it is created by `geoha up`")
    if args.renew:
        return renew_certificates(plan)
    if args.path:
        print(path)
    else:
        print(path.read_text(), end="")
    return EXIT_OK


def renew_certificates(plan: Plan) -> int:
    """A new certificate for every frontend LB; each running one swaps it in through its
    admin socket, so connections go on; a stopped one reads it at its next start."""
    for node in plan.by_role(NodeRole.FRONTEND_LB):
        pem = issue_server_certificate(plan, node)
        until = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc
        socket_path = Path(admin_socket(node))
        if socket_path.exists():
            try:
                replace_certificate(socket_path, node.dir / TLS_PEM, pem)
                used = "in use now, without a restart"
            except LbAdminError as exc:
                used = f"used from its next start (the running LB refused it: {exc})"
        else:
            used = "used from its next start (not running)"
        say(f"{node.name}: new certificate, valid until {until:%Y-%m-%d}; {used}")
    return EXIT_OK


def cmd_dsn(args: argparse.Namespace) -> int:
    _, plan = load(args)
    print(cluster.dsn(plan, args.region, args.write))
    return EXIT_OK
