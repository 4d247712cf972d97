"""What every command shares: reading the topology, and printing for a terminal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geoha.plan import NodeRole, Plan, Tools, expand, resolve_run_dir
from geoha.spec import Spec
from geoha.topology import load_topology


def read_topology(args: argparse.Namespace) -> Spec:
    """The topology file of `-f/--file`, or the reference topology without one."""
    return load_topology(Path(args.file) if args.file else None)


def load(args: argparse.Namespace) -> tuple[Spec, Plan]:
    """The topology and the local plan it expands to (nothing is written)."""
    spec = read_topology(args)
    plan = expand(spec, resolve_run_dir(spec), Tools.discover())
    return spec, plan


def say(message: str) -> None:
    print(message, flush=True)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Columns padded to their widest cell; None shows as '-'."""
    cells = [headers] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), flush=True)


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a log, or none when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def region_urls(plan: Plan, region: str) -> tuple[str, str]:
    """The HTTP and HTTPS entry of a data region: its frontend LB."""
    fe = plan.only(region, NodeRole.FRONTEND_LB)
    return (
        f"http://{fe.address}:{fe.ports['http']}/",
        f"https://{fe.address}:{fe.ports['https']}/",
    )
