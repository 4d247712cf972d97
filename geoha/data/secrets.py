"""Database passwords, Patroni's REST API password and the API's admin token: generated
once per run directory, stored with mode 0600.

Passwords never reach a log: they live in the secrets file, in each database
node's Patroni config (mode 0600, owned by the database user) and in the
run directory's pgpass file that `geoha dsn` points applications at.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict
from pathlib import Path

from geoha.db_access import Secrets
from geoha.render.files import File, write_files
from geoha.spec import Spec

GENERATED_PASSWORD_BYTES = 24  # 32 URL-safe characters
MIN_TOKEN_CHARS = 16


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
        "rest": None,
    }
    values = {key: given[key] or stored.get(key) or generate_password() for key in given}
    result = Secrets(**values)
    if values != stored:
        write_files([File(path, json.dumps(asdict(result), indent=2) + "\n", 0o600)])
    return result


def load_or_create_token(path: Path) -> str:
    """A bearer token kept in its own file (0600): read it, or generate it once."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= MIN_TOKEN_CHARS:
            return token
    token = generate_password()
    write_files([File(path, token + "\n", 0o600)])
    return token
