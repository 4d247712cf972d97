"""Which secrets `geoha secrets rotate` may change (geoha.data.secrets.rotation_users), and
the secrets file it writes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from geoha.data.secrets import ROTATABLE, load_or_create_secrets, rotation_users
from geoha.db_access import Secrets
from geoha.errors import BadInput
from geoha.spec import load_spec, parse_spec


def test_every_secret_may_be_rotated_by_default() -> None:
    assert rotation_users(list(ROTATABLE), load_spec(None)) == list(ROTATABLE)
    assert rotation_users(["rest"], load_spec(None)) == ["rest"]


@pytest.mark.parametrize(
    ("users", "complaint"),
    [
        ([], "--user: one or more of app, replication, superuser, rest (got [])"),
        (["app", "app"], "(got ['app', 'app'])"),
        (["root"], "(got ['root'])"),
        ("app", "(got 'app')"),
        (None, "(got None)"),
    ],
)
def test_a_bad_user_list_names_the_option(users: object, complaint: str) -> None:
    with pytest.raises(BadInput) as refused:
        rotation_users(users, load_spec(None))
    assert complaint in str(refused.value)


def test_a_password_the_topology_file_sets_is_changed_there_not_rotated() -> None:
    spec = parse_spec({"database": {"app_password": "a-long-enough-password-1"}})
    with pytest.raises(BadInput) as refused:
        rotation_users(["replication", "app"], spec)
    assert str(refused.value) == (
        "--user: app (set by database.app_password): the topology file sets it; change it there"
    )
    assert rotation_users(["replication"], spec) == ["replication"]


def test_the_secrets_file_gains_the_rest_password_and_stays_private(tmp_path: Path) -> None:
    """A run directory from before the REST password existed gets one, and keeps the rest."""
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"superuser": "s" * 32, "replication": "r" * 32, "app": "a" * 32}))
    path.chmod(0o644)
    secrets = load_or_create_secrets(load_spec(None), path)
    assert (secrets.superuser, secrets.replication, secrets.app) == ("s" * 32, "r" * 32, "a" * 32)
    assert len(secrets.rest) >= 16 and secrets.rest not in ("s" * 32, "r" * 32, "a" * 32)
    assert json.loads(path.read_text())["rest"] == secrets.rest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secrets_never_show_in_a_repr() -> None:
    secrets = Secrets("s" * 20, "r" * 20, "a" * 20, "p" * 20)
    shown = repr(secrets) + str(secrets)
    assert not any(value in shown for value in ("s" * 20, "r" * 20, "a" * 20, "p" * 20))
