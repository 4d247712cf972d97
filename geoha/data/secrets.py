"""Database credentials: generated once per run directory, stored with mode 0600.

Passwords never reach a log: they live in the secrets file, in each database
node's Patroni config (mode 0600, owned by the database user) and in the
run directory's pgpass file that `geoha dsn` points applications at.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from geoha.render.files import File, write_files
from geoha.spec import Spec

SUPERUSER = "geoha_admin"
REPLICATION_USER = "geoha_replicator"
APP_USER = "geoha_app"
APP_SCHEMA = "app"
GENERATED_PASSWORD_BYTES = 24  # 32 URL-safe characters


@dataclass(frozen=True)
class Secrets:
    superuser: str
    replication: str
    app: str


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def load_or_create_secrets(spec: Spec, path: Path) -> Secrets:
    """The deployment's passwords: from the spec where given, else generated once."""
    stored: dict[str, str] = {}
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        stored = json.loads(path.read_text(encoding="utf-8"))
    given = {
        "superuser": spec.database.superuser_password,
        "replication": spec.database.replication_password,
        "app": spec.database.app_password,
    }
    values = {
        key: given[key] or stored.get(key) or generate_password()
        for key in ("superuser", "replication", "app")
    }
    result = Secrets(**values)
    if values != stored:
        write_files([File(path, json.dumps(asdict(result), indent=2) + "\n", 0o600)])
    return result


def pgpass_file(path: Path, hosts: list[str], port: int, database: str, password: str) -> File:
    """A libpq password file for the application user (mode 0600)."""
    lines = [f"{host}:{port}:{database}:{APP_USER}:{password}" for host in hosts]
    return File(path, "\n".join(lines) + "\n", 0o600)
