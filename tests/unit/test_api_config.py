"""Environment parsing: defaults, libpq URIs, and one clear error per bad variable."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from app.api.config import ConfigError, SessionAttrs, load_settings, parse_dsn, parse_listen
from geoha.render.files import write_files
from geoha.traffic.tls import ca_files, new_ca

WRITE = (
    "postgresql://geoha_app@127.10.5.1:5432,127.20.5.1:5433/geoha"
    "?target_session_attrs=read-write&connect_timeout=2&passfile=/tmp/pgpass"
)
READ = "postgresql://geoha_app@127.20.5.1,127.10.5.1/geoha?target_session_attrs=any"


def env(**overrides: str) -> dict[str, str]:
    base = {
        "GEOHA_REGION": "delhi",
        "GEOHA_INSTANCE": "delhi-api-1",
        "GEOHA_WRITE_DSN": WRITE,
        "GEOHA_READ_DSN": READ,
    }
    base.update(overrides)
    return base


def test_defaults() -> None:
    settings = load_settings(env())
    assert settings.served_by == "delhi/delhi-api-1"
    assert (settings.pool_size, settings.write_timeout_s, settings.ryw_wait_ms) == (10, 3.0, 500)
    assert settings.max_body_bytes == 65536 and settings.cors_origins == frozenset()


def test_multi_host_uri_is_split_per_host() -> None:
    target = parse_dsn("GEOHA_WRITE_DSN", WRITE)
    assert target.hosts == (("127.10.5.1", 5432), ("127.20.5.1", 5433))
    assert target.session_attrs is SessionAttrs.READ_WRITE
    assert target.connect_timeout_s == 2.0
    assert (
        target.host_dsns[1]
        == "postgresql://geoha_app@127.20.5.1:5433/geoha?passfile=%2Ftmp%2Fpgpass"
    )
    read = parse_dsn("GEOHA_READ_DSN", READ)
    assert read.hosts[0] == ("127.20.5.1", 5432) and read.session_attrs is SessionAttrs.ANY


def test_cors_origins() -> None:
    settings = load_settings(env(GEOHA_CORS_ORIGINS="https://a.example, http://localhost:5173"))
    assert settings.cors_origins == {"https://a.example", "http://localhost:5173"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GEOHA_REGION", ""),
        ("GEOHA_REGION", "Delhi!"),
        ("GEOHA_INSTANCE", "a b"),
        ("GEOHA_POOL_SIZE", "abc"),
        ("GEOHA_POOL_SIZE", "0"),
        ("GEOHA_WRITE_TIMEOUT_S", "-1"),
        ("GEOHA_WRITE_TIMEOUT_S", "soon"),
        ("GEOHA_RYW_WAIT_MS", "1.5"),
        ("GEOHA_MAX_BODY_BYTES", "10"),
        ("GEOHA_CORS_ORIGINS", "*"),
        ("GEOHA_CORS_ORIGINS", "https://a.example/path"),
        ("GEOHA_WRITE_DSN", "mysql://x@h/db"),
        ("GEOHA_WRITE_DSN", ""),
        ("GEOHA_WRITE_DSN", "postgresql://u@h/db?target_session_attrs=any"),
        ("GEOHA_READ_DSN", "postgresql://u@h/db?target_session_attrs=sometimes"),
        ("GEOHA_READ_DSN", "postgresql://u@h:99999/db"),
        ("GEOHA_READ_DSN", "postgresql://u@h/db?connect_timeout=0"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env(**{variable: value}))
    assert exc.value.variable == variable
    assert str(exc.value).startswith(f"{variable}=") and "\n" not in str(exc.value)


def test_password_never_in_the_message() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env(GEOHA_WRITE_DSN="postgresql://u:hunter2@h/db?target_session_attrs=any"))
    assert "hunter2" not in str(exc.value)


def test_listen() -> None:
    assert parse_listen("127.240.4.1:8080") == ("127.240.4.1", 8080)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("8080", "host:", "h:0", "h:70000"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_admin_token_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    assert load_settings(env()).admin_token is None
    path.write_text("s3cret-token-of-32-characters-xx\n")
    settings = load_settings(env(GEOHA_ADMIN_TOKEN_FILE=str(path)))
    assert settings.admin_token == "s3cret-token-of-32-characters-xx"
    assert "s3cret" not in repr(settings)
    for text in ("short", "two tokens-of-enough-length", ""):
        path.write_text(text)
        with pytest.raises(ConfigError, match=r"GEOHA_ADMIN_TOKEN_FILE=.*at least 16") as err:
            load_settings(env(GEOHA_ADMIN_TOKEN_FILE=str(path)))
        assert text not in str(err.value) or not text
    missing = str(path) + ".missing"
    with pytest.raises(ConfigError, match=r"GEOHA_ADMIN_TOKEN_FILE=.*a readable file"):
        load_settings(env(GEOHA_ADMIN_TOKEN_FILE=missing))


def test_patroni_ca_file_turns_on_tls_for_the_vantage_probe(tmp_path: Path) -> None:
    assert load_settings(env()).patroni_tls is None
    ca = tmp_path / "ca.pem"
    write_files(ca_files(new_ca("test CA"), ca, tmp_path / "ca.key"))
    settings = load_settings(env(GEOHA_PATRONI_CA_FILE=str(ca)))
    assert settings.patroni_tls is not None
    assert settings.patroni_tls.verify_mode is ssl.CERT_REQUIRED
    not_a_ca = tmp_path / "junk.pem"
    not_a_ca.write_text("not a certificate\n")
    for bad in (str(not_a_ca), str(tmp_path / "missing.pem")):
        with pytest.raises(ConfigError, match=r"GEOHA_PATRONI_CA_FILE=.*a readable PEM file"):
            load_settings(env(GEOHA_PATRONI_CA_FILE=bad))
