"""HAProxy's runtime API over its admin socket: server states, and server changes at runtime.

Each LB declares every server slot the autoscaler may fill; these commands
enable, drain and disable them, reweigh them and point them elsewhere without
a reload. A command HAProxy refuses raises LbAdminError with HAProxy's answer.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from geoha.errors import GeohaError

TIMEOUT_S = 2.0
MAX_WEIGHT = 256
"""HAProxy's largest server weight."""
NAME = re.compile(r"[A-Za-z0-9_.:-]+")
"""A backend or server name as HAProxy accepts it (nothing that could end a command)."""


class LbAdminError(GeohaError):
    """The admin socket is unreachable or refused a command."""


class ServerState(StrEnum):
    """A server's administrative state (`set server B/S state ...`)."""

    READY = "ready"
    """Takes traffic, as its health checks allow."""
    DRAIN = "drain"
    """Finishes its sessions and persistent clients; no new traffic."""
    MAINT = "maint"
    """Out of the pool, health checks stopped (a standby slot)."""


@dataclass(frozen=True)
class ServerSettings:
    """What a server is set to at runtime (`show servers state`)."""

    address: str
    port: int
    weight: int
    state: ServerState


# HAProxy's server admin flags (SRV_ADMF_MAINT, SRV_ADMF_DRAIN): maintenance forced,
# inherited or from DNS resolution; drain forced or inherited. "Disabled in the config"
# (0x04) stays set once such a server is enabled, so it is no part of the state.
MAINT_FLAGS = 0x01 | 0x02 | 0x20
DRAIN_FLAGS = 0x08 | 0x10


def admin_command(socket_path: Path, command: str) -> str:
    """Send one command, return HAProxy's whole answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.connect(str(socket_path))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise LbAdminError(f"{socket_path}: {exc}") from None
    return b"".join(chunks).decode(errors="replace")


def replace_certificate(socket_path: Path, pem_path: Path, pem: str) -> None:
    """Swap the certificate HAProxy loaded from `pem_path` for `pem`, in memory, without a
    reload (its runtime API's `set ssl cert` and `commit ssl cert`); LbAdminError if
    HAProxy refuses it (the transaction is then aborted: the old one stays in use)."""
    staged = admin_command(socket_path, f"set ssl cert {pem_path} <<\n{pem.strip()}\n")
    if "Transaction" not in staged:
        raise LbAdminError(f"{socket_path}: set ssl cert {pem_path}: {staged.strip()}")
    committed = admin_command(socket_path, f"commit ssl cert {pem_path}")
    if "Success" not in committed:
        admin_command(socket_path, f"abort ssl cert {pem_path}")
        raise LbAdminError(f"{socket_path}: commit ssl cert {pem_path}: {committed.strip()}")


def server_states(socket_path: Path) -> dict[str, dict[str, str]]:
    """`show stat` as {backend: {server: status}} (UP, DOWN, MAINT, NOLB, ...)."""
    states: dict[str, dict[str, str]] = {}
    for row in server_rows(socket_path):
        states.setdefault(row["pxname"], {})[row["svname"]] = row.get("status", "")
    return states


def requests_in_flight(socket_path: Path, backend: str) -> dict[str, int]:
    """Requests each server of `backend` is serving or has queued (`scur` + `qcur`)."""
    counts: dict[str, int] = {}
    for row in server_rows(socket_path):
        if row["pxname"] == backend:
            counts[row["svname"]] = int(row.get("scur") or 0) + int(row.get("qcur") or 0)
    return counts


def server_rows(socket_path: Path) -> list[dict[str, str]]:
    """`show stat`'s rows of servers (not the frontends' and backends' own)."""
    text = admin_command(socket_path, "show stat").lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return [r for r in rows if r.get("svname", "") not in ("FRONTEND", "BACKEND", "")]


def server_settings(socket_path: Path, backend: str) -> dict[str, ServerSettings]:
    """Every server of `backend` with its address, port, weight and administrative state."""
    command = f"show servers state {checked_name('backend', backend)}"
    answer = admin_command(socket_path, command)
    lines = answer.strip().splitlines()
    if len(lines) < 2 or not lines[1].startswith("# "):  # a version line, then the header
        raise LbAdminError(f"HAProxy refused `{command}`: {answer.strip()}")
    columns = lines[1][2:].split()
    settings: dict[str, ServerSettings] = {}
    for line in lines[2:]:
        row = dict(zip(columns, line.split(), strict=False))
        flags = int(row["srv_admin_state"])
        state = (
            ServerState.MAINT
            if flags & MAINT_FLAGS
            else ServerState.DRAIN
            if flags & DRAIN_FLAGS
            else ServerState.READY
        )
        settings[row["srv_name"]] = ServerSettings(
            address=row["srv_addr"],
            port=int(row["srv_port"]),
            weight=int(row["srv_uweight"]),
            state=state,
        )
    return settings


def set_server_state(socket_path: Path, backend: str, server: str, state: ServerState) -> None:
    """Enable (READY), drain (DRAIN) or disable (MAINT) a server."""
    command = f"set server {server_ref(backend, server)} state {ServerState(state).value}"
    expect_silence(socket_path, command)


def set_server_weight(socket_path: Path, backend: str, server: str, weight: int) -> None:
    """A server's share of its backend's traffic: 0 (none) to 256."""
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"weight: an integer from 0 to {MAX_WEIGHT} (got {weight!r})")
    expect_silence(socket_path, f"set server {server_ref(backend, server)} weight {weight}")


def set_server_address(
    socket_path: Path, backend: str, server: str, address: str, port: int
) -> None:
    """Point a server at another IP address and port."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"address: an IP address (got {address!r})") from None
    # HAProxy takes any number and keeps its low 16 bits: check the range here.
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port: an integer from 1 to 65535 (got {port!r})")
    command = f"set server {server_ref(backend, server)} addr {ip} port {port}"
    answer = admin_command(socket_path, command).strip()
    # Unlike the other commands, this one answers when it succeeds:
    # "IP changed from ... port changed from ..." or "no need to change the addr, ...".
    if " changed from " not in answer and not answer.startswith("no need to change"):
        raise LbAdminError(f"HAProxy refused `{command}`: {answer or 'no answer'}")


def checked_name(what: str, name: str) -> str:
    """`name`, once checked to be a name and nothing more (no space, `;` or newline that
    would end the command)."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{what}: letters, digits and _.:- only (got {name!r})")
    return name


def server_ref(backend: str, server: str) -> str:
    return f"{checked_name('backend', backend)}/{checked_name('server', server)}"


def expect_silence(socket_path: Path, command: str) -> None:
    """Run a command HAProxy answers only when it refuses it."""
    answer = admin_command(socket_path, command).strip()
    if answer:
        raise LbAdminError(f"HAProxy refused `{command}`: {answer}")
