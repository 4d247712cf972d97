"""The AWS witness's metadata guard: the very iptables rule it applies at boot lets root
through and refuses every other user (a loopback address stands in for AWS's metadata
service), and applying it again adds nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from geoha.cloud.cloudinit import guard_command, guard_rule

STAND_IN = "127.77.0.1"
"""A loopback address no other test uses, in the metadata service's place."""
SUDO = [] if os.geteuid() == 0 else ["sudo", "-n"]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP listener on the stand-in address that accepts and closes connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((STAND_IN, 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def connects(port: int, as_user: str | None) -> bool:
    """Whether a process of `as_user` (None: this one's user, through sudo if need be as
    root) reaches the stand-in."""
    code = (
        "import socket,sys\n"
        f"s=socket.create_connection(({STAND_IN!r},{port}),timeout=5)\n"
        "s.close()\n"
    )
    if as_user is None:
        prefix = SUDO
    elif os.geteuid() == 0:
        prefix = ["runuser", "-u", as_user, "--"]
    else:
        prefix = ["sudo", "-n", "-u", as_user]
    done = run([*prefix, "/usr/bin/python3", "-c", code])
    return done.returncode == 0


@pytest.fixture
def guard() -> Iterator[None]:
    """The guard applied twice for the stand-in; every copy of its rule removed after."""
    for _ in range(2):
        done = run([*SUDO, "sh", "-c", guard_command(STAND_IN)])
        assert done.returncode == 0, done.stderr
    try:
        yield
    finally:
        while run([*SUDO, "iptables", "-w", "-D", *guard_rule(STAND_IN).split()]).returncode == 0:
            pass


def test_only_root_reaches_the_guarded_address(server: int, guard: None) -> None:
    listed = run([*SUDO, "iptables", "-w", "-S", "OUTPUT"])
    assert listed.stdout.count(f"-d {STAND_IN}/32") == 1  # applied twice, added once
    assert connects(server, None)  # root (cloud-init)
    assert not connects(server, "nobody")  # any other user: etcd, a login
