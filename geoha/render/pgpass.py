"""The application user's libpq password file."""

from __future__ import annotations

from pathlib import Path

from geoha.db_access import APP_USER
from geoha.render.files import File


def pgpass_file(path: Path, hosts: list[str], port: int, database: str, password: str) -> File:
    """A libpq password file for the application user (mode 0600)."""
    lines = [f"{host}:{port}:{database}:{APP_USER}:{password}" for host in hosts]
    return File(path, "\n".join(lines) + "\n", 0o600)
