"""Commands that say how to reach the local deployment: open, ca, dsn."""

from __future__ import annotations

import argparse

from geoha.commands.common import load, region_urls
from geoha.data import cluster
from geoha.errors import EXIT_OK, BadInput, GeohaError


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
    if args.path:
        print(path)
    else:
        print(path.read_text(), end="")
    return EXIT_OK


def cmd_dsn(args: argparse.Namespace) -> int:
    _, plan = load(args)
    print(cluster.dsn(plan, args.region, args.write))
    return EXIT_OK
