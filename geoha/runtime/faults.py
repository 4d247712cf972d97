"""The faults chaos injected, recorded on disk so that they can be undone by anyone.

`RUN_DIR/faults.json` lists the active partitions and killed regions. The
controller writes it as it injects and heals; `geoha chaos heal` and `geoha
down` read it when no controller runs (a crashed one left rules behind), so a
partition never outlives the deployment. `Partitioner` turns the plan into
iptables rules (geoha.runtime.partition) for one deployment's chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict

from geoha.plan import Plan
from geoha.render.files import File, write_files
from geoha.runtime.groups import lookup, region_group_name
from geoha.runtime.partition import (
    Cut,
    Iptables,
    chain_name,
    cut_rules,
    mark_rules,
    region_marks,
)

FAULTS_FILE = "faults.json"


class FaultStatus(TypedDict):
    """One active fault as `geoha status --json` lists it under "faults"."""

    kind: str
    """"partition", "kill-region" or "kill-node"."""
    target: str
    """The region cut off or killed, or the node killed."""
    others: list[str]
    """For a partition: the regions it is cut off from."""
    since: float | None


@dataclass(frozen=True)
class Partition:
    region: str
    others: tuple[str, ...]
    since: float

    @property
    def cut(self) -> Cut:
        return Cut(self.region, self.others)


@dataclass(frozen=True)
class KilledRegion:
    region: str
    nodes: tuple[str, ...]
    since: float


@dataclass(frozen=True)
class Faults:
    partitions: tuple[Partition, ...] = ()
    killed_regions: tuple[KilledRegion, ...] = ()
    killed_nodes: dict[str, float] = field(default_factory=dict)
    """Nodes killed one by one (`kill-node`), with when."""

    def statuses(self) -> list[FaultStatus]:
        faults: list[FaultStatus] = [
            {"kind": "partition", "target": p.region, "others": list(p.others), "since": p.since}
            for p in self.partitions
        ]
        faults += [
            {"kind": "kill-region", "target": k.region, "others": [], "since": k.since}
            for k in self.killed_regions
        ]
        faults += [
            {"kind": "kill-node", "target": node, "others": [], "since": since}
            for node, since in sorted(self.killed_nodes.items())
        ]
        return faults

    def with_partition(self, region: str, others: tuple[str, ...]) -> Faults:
        """Cut `region` off from `others` too (an existing cut of it is widened)."""
        now = time.time()
        kept = [p for p in self.partitions if p.region != region]
        old = next((p for p in self.partitions if p.region == region), None)
        merged = tuple(dict.fromkeys((*(old.others if old else ()), *others)))
        since = old.since if old else now
        return replace(self, partitions=(*kept, Partition(region, merged, since)))

    def healed(
        self, region: str | None, region_of: Mapping[str, str]
    ) -> tuple[Faults, list[Partition], list[str]]:
        """Without the faults of `region` (None: every fault): the new record, the partitions
        to mend and the killed nodes to start (`region_of`: each node's region)."""

        def touches(*regions: str) -> bool:
            return region is None or region in regions

        mend = [p for p in self.partitions if touches(p.region, *p.others)]
        regions = [k for k in self.killed_regions if touches(k.region)]
        nodes = [n for n in self.killed_nodes if touches(region_of[n])]
        faults = Faults(
            partitions=tuple(p for p in self.partitions if p not in mend),
            killed_regions=tuple(k for k in self.killed_regions if k not in regions),
            killed_nodes={n: t for n, t in self.killed_nodes.items() if n not in nodes},
        )
        start = list(dict.fromkeys([*(n for k in regions for n in k.nodes), *nodes]))
        return faults, mend, start


def load_faults(run_dir: Path) -> Faults:
    """The recorded faults (none when the file is missing or unreadable)."""
    try:
        data: dict[str, Any] = json.loads((run_dir / FAULTS_FILE).read_text(encoding="utf-8"))
        return Faults(
            partitions=tuple(
                Partition(p["region"], tuple(p["others"]), float(p["since"]))
                for p in data.get("partitions", [])
            ),
            killed_regions=tuple(
                KilledRegion(k["region"], tuple(k["nodes"]), float(k["since"]))
                for k in data.get("killed_regions", [])
            ),
            killed_nodes={str(n): float(t) for n, t in data.get("killed_nodes", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return Faults()


def save_faults(run_dir: Path, faults: Faults) -> None:
    record = {
        "partitions": [
            {"region": p.region, "others": list(p.others), "since": p.since}
            for p in faults.partitions
        ],
        "killed_regions": [
            {"region": k.region, "nodes": list(k.nodes), "since": k.since}
            for k in faults.killed_regions
        ],
        "killed_nodes": faults.killed_nodes,
    }
    write_files([File(run_dir / FAULTS_FILE, json.dumps(record, indent=2) + "\n", 0o600)])


class Partitioner:
    """The deployment's partition rules: marks while it runs, cuts on demand."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        regions = list(plan.spec.regions)
        self.marks = region_marks(regions)
        self.nets = {r: str(plan.spec.regions[r].loopback_net) for r in regions}
        self.iptables = Iptables(chain_name(plan.spec.name))

    def prepare(self, cuts: list[Cut]) -> None:
        """The chain with every region's mark rule, and `cuts` (those already recorded)."""
        gids = {
            r: lookup(region_group_name(self.plan.spec.name, r)).gid for r in self.plan.spec.regions
        }
        self.iptables.ensure(mark_rules(gids, self.marks))
        for cut in cuts:
            self.cut(cut)

    def cut(self, cut: Cut) -> None:
        self.iptables.add(cut_rules(cut, self.nets, self.marks))

    def mend(self, cut: Cut) -> None:
        self.iptables.delete(cut_rules(cut, self.nets, self.marks))

    def remove(self) -> None:
        self.iptables.remove()
