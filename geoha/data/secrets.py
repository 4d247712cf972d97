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
from geoha.errors import BadInput
from geoha.render.files import File, write_files
from geoha.spec import Spec

GENERATED_PASSWORD_BYTES = 24  # 32 URL-safe characters
MIN_TOKEN_CHARS = 16


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


ROTATABLE = ("app", "replication", "superuser", "rest")
"""The secrets `geoha secrets rotate` changes (the `Secrets` fields)."""


def set_in_spec(spec: Spec) -> dict[str, str]:
    """Secrets the topology file sets -> their dotted path (rotated by editing the file)."""
    given = {
        "superuser": (spec.database.superuser_password, "database.superuser_password"),
        "replication": (spec.database.replication_password, "database.replication_password"),
        "app": (spec.database.app_password, "database.app_password"),
    }
    return {key: path for key, (value, path) in given.items() if value}


def rotation_users(users: object, spec: Spec) -> list[str]:
    """The secrets a rotation may change, checked: BadInput naming `--user` otherwise."""
    if (
        not isinstance(users, list)
        or not users
        or any(u not in ROTATABLE for u in users)
        or len(set(users)) != len(users)
    ):
        raise BadInput(f"--user: one or more of {', '.join(ROTATABLE)} (got {users!r})")
    in_spec = set_in_spec(spec)
    fixed = [f"{u} (set by {in_spec[u]})" for u in users if u in in_spec]
    if fixed:
        raise BadInput(f"--user: {', '.join(fixed)}: the topology file sets it; change it there")
    return users


def store_secrets(path: Path, secrets: Secrets) -> None:
    """Write the secrets file (0600, atomically)."""
    write_files([File(path, json.dumps(asdict(secrets), indent=2) + "\n", 0o600)])


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
        store_secrets(path, result)
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
