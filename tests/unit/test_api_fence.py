"""The DCS fence's pure parts: etcd's health answer, and the setting."""

from __future__ import annotations

import pytest

from app.api.config import ConfigError, HttpUrl, load_settings
from app.api.fence import member_health
from tests.unit.test_api_config import env

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
DOWN_HEAD = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n"


def test_a_healthy_member_fences_nothing() -> None:
    assert member_health(OK_HEAD + b'{"health":"true"}') is None
    assert member_health(OK_HEAD + b'{"health":"true","reason":""}') is None


def test_an_unhealthy_member_says_why() -> None:
    assert member_health(DOWN_HEAD + b'{"health":"false"}') == (
        "no raft leader, or no read through it"
    )
    assert member_health(DOWN_HEAD + b'{"health":"false","reason":"RAFT NO LEADER"}') == (
        "RAFT NO LEADER"
    )


@pytest.mark.parametrize(
    "answer",
    [b"", b"SSH-2.0-OpenSSH\r\n", OK_HEAD + b"<html>", OK_HEAD + b"[]", OK_HEAD + b'{"a":1}'],
)
def test_an_answer_that_is_not_etcds_counts_as_unhealthy(answer: bytes) -> None:
    assert member_health(answer) is not None


def test_etcd_health_url_setting() -> None:
    assert load_settings(env()).etcd_health is None  # without it the API fences nothing
    settings = load_settings(env(GEOHA_ETCD_HEALTH_URL="http://10.10.4.1:2381/health"))
    assert settings.etcd_health == HttpUrl("10.10.4.1", 2381, "/health")
    assert str(HttpUrl("::1", 2381, "/health")) == "http://[::1]:2381/health"


@pytest.mark.parametrize(
    "value",
    [
        "10.10.4.1:2381",
        "https://10.10.4.1:2381/health",
        "http://10.10.4.1/health",
        "http://10.10.4.1:2381/health?x=1",
        "http://u:hunter2@10.10.4.1:2381/health",
        "http://10.10.4.1:99999/health",
    ],
)
def test_a_bad_etcd_health_url_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env(GEOHA_ETCD_HEALTH_URL=value))
    assert exc.value.variable == "GEOHA_ETCD_HEALTH_URL" and "hunter2" not in str(exc.value)
