"""Process supervision: each node is a process group started in its own session.

A node's processes are recorded in `NODE_DIR/pid.json` (pid and start time),
so a controller that restarts can adopt nodes that are still running, and
`geoha down` can stop them even without a controller. Only processes this
deployment started are ever signalled: by PID checked against its start time,
or by the process group of such a PID -- never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from geoha.runtime.groups import RegionGroup, spawn_argv

PID_FILE = "pid.json"
KILL_WAIT_S = 5.0
"""How long a SIGKILLed node's processes may take to die."""


@dataclass(frozen=True)
class RunAs:
    """The OS user a node runs as (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int

    @staticmethod
    def current() -> RunAs:
        entry = pwd.getpwuid(os.geteuid())
        return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)

    @staticmethod
    def database_user() -> RunAs:
        """The invoking user, or `postgres` when invoked as root."""
        if os.geteuid() != 0:
            return RunAs.current()
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root, PostgreSQL needs the unprivileged user 'postgres' "
                "(created by the postgresql-15 package: run scripts/setup.sh)"
            ) from None
        return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    create_time: float

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return (
                abs(proc.create_time() - self.create_time) < 0.05
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


def read_record(node_dir: Path) -> ProcessRecord | None:
    try:
        raw = json.loads((node_dir / PID_FILE).read_text(encoding="utf-8"))
        return ProcessRecord(int(raw["pid"]), float(raw["create_time"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def write_record(node_dir: Path, record: ProcessRecord) -> None:
    tmp = node_dir / f".{PID_FILE}.tmp"
    tmp.write_text(json.dumps({"pid": record.pid, "create_time": record.create_time}))
    tmp.replace(node_dir / PID_FILE)


def clear_record(node_dir: Path) -> None:
    (node_dir / PID_FILE).unlink(missing_ok=True)


class NodeProcess:
    """A started (or adopted) node: its leader PID, its group, its log."""

    def __init__(self, record: ProcessRecord, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.record = record
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.record.pid

    def exit_code(self) -> int | None:
        """None while running; the exit code (or -1 for an adopted process) once gone."""
        if self.popen is not None:
            return self.popen.poll()
        return None if self.record.alive() else -1

    def running(self) -> bool:
        return self.exit_code() is None


def start_process(
    argv: Iterable[str],
    node_dir: Path,
    log_path: Path,
    run_as: RunAs | None,
    *,
    env: dict[str, str] | None = None,
    group: RegionGroup | None = None,
) -> NodeProcess:
    """Start a node in a new session (its own process group), output appended to its log.

    `group`: the region's Unix group the node runs under (its primary group as
    root; through `sg` for an ordinary user, who is a member of it).
    """
    argv = list(argv)
    as_root = os.geteuid() == 0
    if group is not None and not as_root and group.gid != os.getegid():
        argv = spawn_argv(argv, group)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 -- handed to the child, closed below
    if run_as is not None:
        os.chown(log_path, run_as.uid, run_as.gid)
    switch_user = run_as is not None and run_as.uid != os.geteuid()
    child_env = dict(os.environ if env is None else env)
    if switch_user and run_as is not None:
        child_env.update(HOME=str(node_dir), USER=run_as.name, LOGNAME=run_as.name)
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=node_dir,
            env=child_env,
            start_new_session=True,
            user=run_as.uid if switch_user and run_as else None,
            group=primary_group(run_as, group, switch_user, as_root),
            extra_groups=[] if switch_user or (as_root and group is not None) else None,
        )
    finally:
        log.close()
    record = ProcessRecord(popen.pid, psutil.Process(popen.pid).create_time())
    write_record(node_dir, record)
    return NodeProcess(record, popen)


def primary_group(
    run_as: RunAs | None, group: RegionGroup | None, switch_user: bool, as_root: bool
) -> int | None:
    """The gid the child gets: the region's (as root), else its user's when switching user."""
    if as_root and group is not None:
        return group.gid
    if switch_user and run_as is not None:
        return run_as.gid
    return None


def adopt_process(node_dir: Path) -> NodeProcess | None:
    record = read_record(node_dir)
    if record is None or not record.alive():
        return None
    return NodeProcess(record)


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


def node_processes(record: ProcessRecord, extra: Iterable[int] = ()) -> list[psutil.Process]:
    """Every process of a node: its group, its descendants, and `extra` roots with theirs.

    The group is searched also when its leader is gone: a SIGKILLed leader leaves its
    children running (an API's worker, still listening on the node's address). Linux
    does not give a pid to a new process while a group of that id has members, so the
    members found are the node's, unless the pid now names a newer process (the group
    emptied, and the pid was reused): then there is nothing of the node to find."""
    found: dict[int, psutil.Process] = {}
    roots: list[psutil.Process] = []
    alive = record.alive()
    if alive:
        roots.append(psutil.Process(record.pid))
    if alive or not pid_reused(record):
        for proc in group_members(record.pid):
            found[proc.pid] = proc
    for pid in extra:
        with contextlib.suppress(psutil.Error):
            roots.append(psutil.Process(pid))
    for root in roots:
        found[root.pid] = root
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                found[child.pid] = child
    return [proc for proc in found.values() if not dead(proc)]


def pid_reused(record: ProcessRecord) -> bool:
    """The recorded pid names another process now (started at another time)."""
    try:
        return abs(psutil.Process(record.pid).create_time() - record.create_time) >= 0.05
    except psutil.Error:
        return False


def dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie: it has exited and only waits for its parent to collect it (an
    orphan's new parent, PID 1, may take its time; the process is dead meanwhile)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def wait_dead(procs: list[psutil.Process], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(dead(proc) for proc in procs):
        time.sleep(0.02)


def signal_all(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def kill_node(record: ProcessRecord, extra_pids: Callable[[], list[int]]) -> int:
    """SIGKILL the node's whole process tree at once, as a machine that dies. Returns the count."""
    procs = node_processes(record, extra_pids())
    signal_all(procs, signal.SIGKILL)
    wait_dead(procs, KILL_WAIT_S)
    return len(procs)


def stop_node(
    record: ProcessRecord,
    extra_pids: Callable[[], list[int]],
    timeout_s: float = 30.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> None:
    """Signal the node's process group, wait, then SIGKILL whatever of the node is left."""
    if record.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, stop_signal)
    else:  # the leader is gone: what is left of its group gets the signal one by one
        signal_all(node_processes(record), stop_signal)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not node_processes(record, extra_pids()):
            return
        time.sleep(0.2)
    kill_node(record, extra_pids)
