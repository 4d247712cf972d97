"""HAProxy's runtime API over its admin socket: server states, and server changes at runtime."""

from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

TIMEOUT_S = 2.0


class LbAdminError(Exception):
    """The admin socket is unreachable or refused a command."""


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


def server_states(socket_path: Path) -> dict[str, dict[str, str]]:
    """`show stat` as {backend: {server: status}} (UP, DOWN, MAINT, NOLB, ...)."""
    text = admin_command(socket_path, "show stat").lstrip("# ")
    states: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        server = row.get("svname", "")
        if server in ("FRONTEND", "BACKEND", ""):
            continue
        states.setdefault(row["pxname"], {})[server] = row.get("status", "")
    return states
