"""One Unix group per region: every process of region R runs under it.

A region fault cuts a region off with `iptables -m owner --gid-owner`:
an unbound loopback connection leaves from 127.0.0.1, so addresses alone
cannot tell regions apart, but the group of the process that opened the
socket can. The group is `DEPLOYMENT-REGION` (e.g. `geoha-delhi`).

As root the controller starts a node with the group as its primary group.
An ordinary user cannot switch groups by itself: it is made a member of each
group (by set-up, through sudo) and starts nodes through `sg`, which switches
to a group its user belongs to.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shlex
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from geoha.errors import GeohaError

MAX_GROUP_NAME = 32


class GroupError(GeohaError):
    """A region group is missing and cannot be created here."""


@dataclass(frozen=True)
class RegionGroup:
    name: str
    gid: int


def region_group_name(deployment: str, region: str) -> str:
    """`DEPLOYMENT-REGION`, shortened with a digest when longer than Linux allows."""
    name = f"{deployment}-{region}".replace("_", "-")
    if len(name) <= MAX_GROUP_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_GROUP_NAME - 9]}-{digest}"


def lookup(name: str) -> RegionGroup:
    try:
        return RegionGroup(name, grp.getgrnam(name).gr_gid)
    except KeyError:
        raise GroupError(
            f"the region group {name} does not exist: `geoha up` creates it (as root, or "
            "through sudo)"
        ) from None


def invoking_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def member(group: str, user: str) -> bool:
    entry = grp.getgrnam(group)
    return user in entry.gr_mem or pwd.getpwnam(user).pw_gid == entry.gr_gid


def ensure_groups(names: Iterable[str]) -> list[str]:
    """Create the missing groups (and, for an ordinary user, join them); what was done."""
    root = os.geteuid() == 0
    sudo = [] if root else ["sudo", "-n"]
    user = invoking_user()
    done: list[str] = []
    for name in names:
        steps: list[list[str]] = []
        try:
            grp.getgrnam(name)
        except KeyError:
            steps.append([*sudo, "groupadd", "--system", name])
        if not root and (steps or not member(name, user)):
            steps.append([*sudo, "gpasswd", "--add", user, name])
        for argv in steps:
            run_privileged(argv)
            done.append(" ".join(argv[len(sudo) :]))
    return done


def run_privileged(argv: list[str]) -> None:
    if argv[0] == "sudo" and shutil.which("sudo") is None:
        raise GroupError(f"needs root: run `{' '.join(argv[2:])}` as root, or install sudo")
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise GroupError(f"{' '.join(argv)}: {exc}") from None
    if result.returncode != 0:
        shown = " ".join(argv[2:] if argv[0] == "sudo" else argv)
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit {result.returncode}"
        raise GroupError(f"could not run `{shown}` ({reason}): run it as root, or with sudo")


def spawn_argv(argv: list[str], group: RegionGroup) -> list[str]:
    """The command line that runs `argv` under `group` for an ordinary user (through sg)."""
    return ["sg", group.name, "-c", "exec " + shlex.join(argv)]
