"""Network partitions between regions: iptables rules in a chain of the deployment's own.

Addresses alone cannot cut a region off on one machine: an unbound connection
to a 127.x address leaves from 127.0.0.1. But every process of region R runs
under R's Unix group (geoha.runtime.groups), so the chain marks each new
connection with the region of the process that opened it (owner match on the
group, CONNMARK, one mark per region within `MARK_MASK`). A cut between R and
S then drops every packet, both ways, of a connection that a process of R
opened to S's net or a process of S opened to R's net -- connections that were
open before the cut included, since they were marked when they opened. Anyone
else (a user's browser, the controller's health checks) is not marked and
still reaches every region, as users of that region would.

The chain (`GEOHA-...`, jumped to from OUTPUT) is the only one ever touched.
Rule building is pure (`mark_rules`, `cut_rules`); `Iptables` applies them,
through `sudo -n` for an ordinary user.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from geoha.errors import GeohaError

MARK_MASK = 0x00FF0000
"""The connection-mark bits geoha uses (one value per region inside them)."""
MARK_SHIFT = 16
MAX_CHAIN = 28
"""iptables' longest chain name."""
TIMEOUT_S = 15.0


class PartitionError(GeohaError):
    """iptables is missing, not permitted, or refused a rule."""


@dataclass(frozen=True)
class Cut:
    """Region `region` cut off from each of `others`, both ways."""

    region: str
    others: tuple[str, ...]

    def pairs(self) -> list[tuple[str, str]]:
        return [(self.region, other) for other in self.others]


def chain_name(deployment: str) -> str:
    """`GEOHA-DEPLOYMENT`, shortened with a digest when longer than iptables allows."""
    name = f"GEOHA-{deployment}"
    if len(name) <= MAX_CHAIN:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_CHAIN - 9]}-{digest}"


def region_marks(regions: Iterable[str]) -> dict[str, int]:
    """Each region's connection mark, in the spec's order (at most 255 regions)."""
    marks = {region: (i + 1) << MARK_SHIFT for i, region in enumerate(regions)}
    if len(marks) > MARK_MASK >> MARK_SHIFT:
        raise PartitionError(f"at most {MARK_MASK >> MARK_SHIFT} regions (got {len(marks)})")
    return marks


def mark_rules(gids: Mapping[str, int], marks: Mapping[str, int]) -> list[list[str]]:
    """Mark each new connection with the region of the group that opened it."""
    return [
        [
            *("-m", "conntrack", "--ctstate", "NEW"),
            *("-m", "owner", "--gid-owner", str(gid)),
            *("-m", "comment", "--comment", f"geoha mark {region}"),
            *("-j", "CONNMARK", "--set-xmark", f"{marks[region]:#x}/{MARK_MASK:#x}"),
        ]
        for region, gid in gids.items()
    ]


def cut_rules(cut: Cut, nets: Mapping[str, str], marks: Mapping[str, int]) -> list[list[str]]:
    """Drop every packet of a connection opened across the cut, either way."""
    rules = []
    for a, b in cut.pairs():
        for opener, target in ((a, b), (b, a)):
            rules.append(
                [
                    *("-m", "connmark", "--mark", f"{marks[opener]:#x}/{MARK_MASK:#x}"),
                    *("-m", "conntrack", "--ctorigdst", nets[target]),
                    *("-m", "comment", "--comment", f"geoha cut {a}|{b}"),
                    *("-j", "DROP"),
                ]
            )
    return rules


class Iptables:
    """The deployment's chain: created, filled, emptied and removed; nothing else touched."""

    def __init__(self, chain: str) -> None:
        self.chain = chain
        self.prefix = ["iptables", "-w", "5"]
        if os.geteuid() != 0:
            self.prefix = ["sudo", "-n", *self.prefix]

    def run(self, *args: str, check: bool = True) -> bool:
        """Run one iptables command; False when it failed and `check` is off."""
        argv = [*self.prefix, *args]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PartitionError(f"`{' '.join(argv)}`: {exc}") from None
        if result.returncode != 0 and check:
            lines = (result.stderr or result.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit {result.returncode}"
            hint = "" if os.geteuid() == 0 else " (partitions need root or passwordless sudo)"
            raise PartitionError(f"`{' '.join(args)}` failed: {reason}{hint}")
        return result.returncode == 0

    def exists(self) -> bool:
        return self.run("-S", self.chain, check=False)

    def ensure(self, rules: list[list[str]]) -> None:
        """The chain exists, OUTPUT jumps to it, and holds each rule (added when missing)."""
        if not self.exists():
            self.run("-N", self.chain)
        if not self.run("-C", "OUTPUT", "-j", self.chain, check=False):
            self.run("-I", "OUTPUT", "-j", self.chain)
        self.add(rules)

    def add(self, rules: list[list[str]]) -> None:
        for rule in rules:
            if not self.run("-C", self.chain, *rule, check=False):
                self.run("-A", self.chain, *rule)

    def delete(self, rules: list[list[str]]) -> None:
        for rule in rules:
            while self.run("-C", self.chain, *rule, check=False):
                self.run("-D", self.chain, *rule)

    def remove(self) -> None:
        """Take the chain out of OUTPUT and delete it (nothing when it is not there)."""
        while self.run("-C", "OUTPUT", "-j", self.chain, check=False):
            self.run("-D", "OUTPUT", "-j", self.chain)
        if self.exists():
            self.run("-F", self.chain)
            self.run("-X", self.chain)
