"""Settings from environment variables, validated before anything starts.

Every problem raises `ConfigError` naming the variable, the value given and
what was expected; `python -m app.api` prints it as one line and exits 2.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from app.api.vantage import VantageTarget, parse_targets

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ORIGIN_PATTERN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$"
)
DEFAULT_PG_PORT = 5432
DEFAULT_CONNECT_TIMEOUT_S = 2.0
ADMIN_TOKEN_MIN_CHARS = 16


class ConfigError(ValueError):
    """A bad environment variable; the message is one line naming it."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 240 else value[:237] + "..."
        super().__init__(f"{variable}={shown!r} is invalid: expected {expected}")
        self.variable = variable


class SessionAttrs(StrEnum):
    """libpq `target_session_attrs` values this API understands."""

    ANY = "any"
    READ_WRITE = "read-write"
    PRIMARY = "primary"
    READ_ONLY = "read-only"
    STANDBY = "standby"


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed libpq multi-host URI: nodes to try in order, and what to accept.

    `host_dsns` holds one single-host URI per node (for asyncpg, which would
    otherwise apply one connect timeout to the whole list instead of per host as
    libpq does); `connect_timeout_s` is libpq's per-host `connect_timeout`.
    """

    hosts: tuple[tuple[str, int], ...]
    host_dsns: tuple[str, ...]
    session_attrs: SessionAttrs
    connect_timeout_s: float


@dataclass(frozen=True)
class HttpUrl:
    """A plain `http://host:port/path` (the local etcd member's health endpoint)."""

    host: str
    port: int
    path: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"


def _http_url_of(text: str) -> HttpUrl | None:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or port is None:
        return None
    if parts.query or parts.fragment or parts.username:
        return None
    return HttpUrl(parts.hostname, port, parts.path or "/")


@dataclass(frozen=True)
class Settings:
    """Everything the API reads from its environment (see docs/API.md)."""

    region: str
    instance: str
    write: DatabaseTarget
    read: DatabaseTarget
    pool_size: int = 10
    write_timeout_s: float = 3.0
    ryw_wait_ms: int = 500
    max_body_bytes: int = 65536
    cors_origins: frozenset[str] = frozenset()
    etcd_health: HttpUrl | None = None
    """The region's etcd member's /health, for the DCS fence (fence.py)."""
    vantage: tuple[VantageTarget, ...] = ()
    """The database nodes this instance probes for `/health/vantage` (vantage.py)."""
    patroni_tls: ssl.SSLContext | None = field(default=None, compare=False)
    """How Patroni's REST API is verified when it speaks HTTPS; None: plain HTTP."""
    admin_token: str | None = field(default=None, repr=False)
    """The bearer token of the instance-only admin routes (pausing writes); None: they are off."""

    @property
    def served_by(self) -> str:
        return f"{self.region}/{self.instance}"


def _split_hosts(variable: str, dsn: str, hostlist: str) -> list[tuple[str, int]]:
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        match = re.fullmatch(r"\[([0-9a-fA-F:]+)\](?::([0-9]+))?|([^:\[\]]+)(?::([0-9]+))?", item)
        if match is None:
            raise ConfigError(variable, dsn, f"host[:port] items in the host list, got {item!r}")
        host = match.group(1) or match.group(3)
        port_text = match.group(2) or match.group(4)
        port = int(port_text) if port_text else DEFAULT_PG_PORT
        if not 0 < port < 65536:
            raise ConfigError(variable, dsn, f"ports 1..65535, got {port}")
        hosts.append((host, port))
    return hosts


def _session_attrs(variable: str, dsn: str, text: str) -> SessionAttrs:
    try:
        return SessionAttrs(text)
    except ValueError:
        allowed = ", ".join(a.value for a in SessionAttrs)
        raise ConfigError(variable, dsn, f"target_session_attrs one of {allowed}") from None


def _connect_timeout(variable: str, dsn: str, text: str | None) -> float:
    if text is None:
        return DEFAULT_CONNECT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise ConfigError(variable, dsn, "connect_timeout in seconds, 1..60")
    return value


def redact(dsn: str) -> str:
    """The URI with any password replaced, for error messages."""
    return re.sub(r"^([a-z]+://[^:@/]*):[^@/]*@", r"\1:***@", dsn)


def parse_dsn(variable: str, dsn: str) -> DatabaseTarget:
    """Parse a libpq URI (`postgresql://user@h1:5432,h2:5432/db?...`)."""
    shown = redact(dsn)
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(variable, shown, "a libpq URI starting with postgresql://")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    if not hostlist:
        raise ConfigError(variable, shown, "at least one host in the URI")
    hosts = _split_hosts(variable, shown, hostlist)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    attrs = _session_attrs(variable, shown, params.pop("target_session_attrs", "any"))
    timeout = _connect_timeout(variable, shown, params.pop("connect_timeout", None))
    prefix = f"{parts.scheme}://{userinfo}@" if userinfo else f"{parts.scheme}://"
    query = f"?{urlencode(params)}" if params else ""
    host_dsns = tuple(
        f"{prefix}{f'[{h}]' if ':' in h else h}:{p}{parts.path}{query}" for h, p in hosts
    )
    return DatabaseTarget(tuple(hosts), host_dsns, attrs, timeout)


def _int(env: Mapping[str, str], variable: str, default: int, low: int, high: int) -> int:
    text = env.get(variable)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(variable, text, f"an integer {low}..{high}")
    return value


def _float(env: Mapping[str, str], variable: str, default: float, low: float, high: float) -> float:
    text = env.get(variable)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = low - 1
    if not low < value <= high:
        raise ConfigError(variable, text, f"a number of seconds above {low:g}, at most {high:g}")
    return value


def _name(env: Mapping[str, str], variable: str) -> str:
    text = env.get(variable, "")
    if not NAME_PATTERN.fullmatch(text):
        raise ConfigError(variable, text, "lowercase letters, digits and '-', 1..63 characters")
    return text


def _origins(env: Mapping[str, str]) -> frozenset[str]:
    text = env.get("GEOHA_CORS_ORIGINS", "")
    origins = [o.strip() for o in text.split(",") if o.strip()]
    for origin in origins:
        if not ORIGIN_PATTERN.fullmatch(origin):
            raise ConfigError(
                "GEOHA_CORS_ORIGINS",
                text,
                "comma-separated origins like https://app.example.com (no '*', no path)",
            )
    return frozenset(origins)


def _dsn(env: Mapping[str, str], variable: str) -> DatabaseTarget:
    text = env.get(variable, "")
    if not text:
        raise ConfigError(variable, text, "a libpq URI listing the database nodes")
    return parse_dsn(variable, text)


def _etcd_health(env: Mapping[str, str]) -> HttpUrl | None:
    text = env.get("GEOHA_ETCD_HEALTH_URL", "")
    if not text:
        return None
    url = _http_url_of(text)
    if url is None:
        raise ConfigError(
            "GEOHA_ETCD_HEALTH_URL",
            redact(text),
            "http://host:port/health of the region's etcd member",
        )
    return url


def _vantage(env: Mapping[str, str]) -> tuple[VantageTarget, ...]:
    text = env.get("GEOHA_VANTAGE", "")
    if not text:
        return ()
    targets = parse_targets(text)
    if targets is None:
        raise ConfigError(
            "GEOHA_VANTAGE",
            text,
            "NAME=HOST:PG_PORT:PATRONI_PORT items, comma-separated, names unique",
        )
    return tuple(targets)


def _patroni_tls(env: Mapping[str, str]) -> ssl.SSLContext | None:
    path = env.get("GEOHA_PATRONI_CA_FILE", "")
    if not path:
        return None
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "GEOHA_PATRONI_CA_FILE",
            path,
            f"a readable PEM file of the deployment's CA ({type(exc).__name__})",
        ) from None


def _admin_token(env: Mapping[str, str]) -> str | None:
    path = env.get("GEOHA_ADMIN_TOKEN_FILE", "")
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            "GEOHA_ADMIN_TOKEN_FILE", path, f"a readable file ({type(exc).__name__})"
        ) from None
    if len(token) < ADMIN_TOKEN_MIN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(
            "GEOHA_ADMIN_TOKEN_FILE",
            path,
            f"a file holding one token of at least {ADMIN_TOKEN_MIN_CHARS} characters",
        )
    return token


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate every GEOHA_* variable the API uses."""
    write = _dsn(env, "GEOHA_WRITE_DSN")
    if write.session_attrs not in (SessionAttrs.READ_WRITE, SessionAttrs.PRIMARY):
        raise ConfigError(
            "GEOHA_WRITE_DSN", redact(env["GEOHA_WRITE_DSN"]), "target_session_attrs=read-write"
        )
    return Settings(
        region=_name(env, "GEOHA_REGION"),
        instance=_name(env, "GEOHA_INSTANCE"),
        write=write,
        read=_dsn(env, "GEOHA_READ_DSN"),
        pool_size=_int(env, "GEOHA_POOL_SIZE", 10, 1, 200),
        write_timeout_s=_float(env, "GEOHA_WRITE_TIMEOUT_S", 3.0, 0.0, 60.0),
        ryw_wait_ms=_int(env, "GEOHA_RYW_WAIT_MS", 500, 0, 10_000),
        max_body_bytes=_int(env, "GEOHA_MAX_BODY_BYTES", 65536, 1024, 64 * 1024 * 1024),
        cors_origins=_origins(env),
        etcd_health=_etcd_health(env),
        vantage=_vantage(env),
        patroni_tls=_patroni_tls(env),
        admin_token=_admin_token(env),
    )


def parse_listen(text: str) -> tuple[str, int]:
    """`GEOHA_API_LISTEN` (host:port, IPv6 in brackets) for `python -m app.api`."""
    match = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:([0-9]{1,5})|([^:\[\]]+):([0-9]{1,5})", text)
    port = int(match.group(2) or match.group(4)) if match else 0
    if match is None or not 0 < port < 65536:
        raise ConfigError("GEOHA_API_LISTEN", text, "host:port, e.g. 127.0.0.1:8080")
    return (match.group(1) or match.group(3), port)
