"""Process supervision on real processes: groups, records, kill and stop."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil

from geoha.runtime.groups import ensure_groups, lookup, region_group_name
from geoha.runtime.process import (
    adopt_process,
    clear_record,
    kill_node,
    node_processes,
    read_record,
    start_process,
    stop_node,
)

# A "node" whose leader spawns a child in its group and a detached grandchild in a
# session of its own (as Patroni does with the postmaster); it prints the detached pid.
SCRIPT = """
sleep 300 &
setsid sleep 301 &
echo $! > detached.pid
wait
"""


def start_node(tmp_path: Path) -> tuple[int, int]:
    proc = start_process(["bash", "-c", SCRIPT], tmp_path, tmp_path / "node.log", None)
    deadline = time.monotonic() + 10
    while not (tmp_path / "detached.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    detached = int((tmp_path / "detached.pid").read_text())
    return proc.pid, detached


def test_record_adopt_and_kill_every_process_of_a_node(tmp_path: Path) -> None:
    leader, detached = start_node(tmp_path)
    record = read_record(tmp_path)
    assert record is not None and record.pid == leader and record.alive()
    assert os.getpgid(leader) == leader  # its own process group (new session)
    adopted = adopt_process(tmp_path)
    assert adopted is not None and adopted.running()
    group = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == leader]
    assert len(group) >= 2
    killed = kill_node(record, lambda: [detached])
    assert killed >= 3
    for pid in [*group, detached]:
        assert not _alive(pid), pid
    clear_record(tmp_path)
    assert adopt_process(tmp_path) is None


def test_stop_terminates_gracefully_then_kills_leftovers(tmp_path: Path) -> None:
    leader, detached = start_node(tmp_path)
    record = read_record(tmp_path)
    assert record is not None
    started = time.monotonic()
    # SIGTERM reaches the group; the detached sleep ignores nothing but is outside the
    # group, so only the final SIGKILL round (after the timeout) reaches it.
    stop_node(record, lambda: [detached] if _alive(detached) else [], timeout_s=1.0)
    assert time.monotonic() - started < 10
    assert not _alive(leader) and not _alive(detached)


def test_what_a_killed_leader_left_in_its_group_is_still_the_node_s(tmp_path: Path) -> None:
    """SIGKILL to an API's main process leaves its worker listening on the node's
    address; a restart must kill it first, and a stop must not miss it."""
    leader, detached = start_node(tmp_path)
    record = read_record(tmp_path)
    assert record is not None
    child = next(p.pid for p in psutil.process_iter() if _pgid(p.pid) == leader and p.pid != leader)
    os.kill(leader, 9)
    deadline = time.monotonic() + 5
    while record.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not record.alive() and _alive(child)  # the group outlives its leader
    assert child in [p.pid for p in node_processes(record)]
    assert kill_node(record, lambda: [detached]) >= 2
    assert not _alive(child) and not _alive(detached)
    assert node_processes(record) == []


def test_a_stale_record_names_no_process(tmp_path: Path) -> None:
    (tmp_path / "pid.json").write_text(f'{{"pid": {os.getpid()}, "create_time": 1.0}}')
    assert adopt_process(tmp_path) is None  # same pid, other start time: not ours


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_node_runs_under_its_region_group(tmp_path: Path) -> None:
    """The region's Unix group is what a partition matches (iptables --gid-owner)."""
    name = region_group_name("geohatest", "region-a")
    created = ensure_groups([name])
    try:
        group = lookup(name)
        proc = start_process(["sleep", "30"], tmp_path, tmp_path / "node.log", None, group=group)
        try:
            deadline = time.monotonic() + 10
            gid = None
            while time.monotonic() < deadline:
                # through sg (ordinary user) the leader execs into sleep: wait for it
                child = psutil.Process(proc.pid)
                if child.name() == "sleep":
                    gid = child.gids().effective
                    break
                time.sleep(0.05)
            assert gid == group.gid
        finally:
            kill_node(proc.record, list)
    finally:
        if any(step.startswith("groupadd") for step in created) and os.geteuid() == 0:
            subprocess.run(["groupdel", name], check=False)


def test_group_names_fit_linux_limits() -> None:
    assert region_group_name("geoha", "delhi") == "geoha-delhi"
    assert region_group_name("my_app", "chennai") == "my-app-chennai"
    long = region_group_name("a" * 40, "b" * 32)
    assert len(long) == 32
    assert long != region_group_name("a" * 40, "c" * 32)
