"""Health: each role's answer read one way, whether probed by the controller or read
by `geoha status`, with fake HTTP answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from geoha import health
from geoha.health import DbRole, Health, PatroniState, read_etcd, read_patroni
from geoha.plan import Node, Plan, Tools, expand
from geoha.spec import load_spec

pytestmark = pytest.mark.anyio

PLAN: Plan = expand(load_spec(None), Path("/srv/run"), Tools("/p", "/e", "/pg"))
DB = PLAN.node("delhi-db")

Answer = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def answers(status: int, body: Any = None, text: str | None = None) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return answer


def refuses(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def probe(node: Node, answer: Answer) -> Health:
    seen: list[str] = []

    def recorded(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return answer(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(recorded)) as client:
        result = await health.probe(node, client)
    assert seen == [node.health_url]
    return result


@pytest.mark.parametrize(
    "body,expected",
    [
        ({"state": "running", "role": "primary"}, Health(True, "primary", DbRole.PRIMARY)),
        ({"state": "running", "role": "master"}, Health(True, "primary", DbRole.PRIMARY)),
        (
            {"state": "running", "role": "replica", "replication_state": "streaming"},
            Health(True, "replica, streaming", DbRole.REPLICA),
        ),
        (
            {"state": "running", "role": "replica"},
            Health(False, "replica, not streaming", DbRole.REPLICA),
        ),
        ({"state": "starting", "role": "replica"}, Health(False, "PostgreSQL starting")),
        ({}, Health(False, "PostgreSQL unknown")),
    ],
)
async def test_database_probe_reads_patroni_and_names_the_role(
    body: dict[str, Any], expected: Health
) -> None:
    assert await probe(DB, answers(200, body)) == expected


async def test_database_probe_when_patroni_does_not_answer() -> None:
    assert await probe(DB, refuses) == Health(False, "Patroni not answering (ConnectError)")
    garbled = await probe(DB, answers(200, text="<html>"))
    assert garbled == Health(False, "Patroni not answering (JSONDecodeError)")


async def test_etcd_probe() -> None:
    etcd = PLAN.node("mumbai-etcd")
    assert await probe(etcd, answers(200, {"health": "true"})) == Health(True, "healthy member")
    sick = await probe(etcd, answers(503, {"health": "false", "reason": "RAFT NO LEADER"}))
    assert sick == Health(False, "unhealthy: RAFT NO LEADER")
    assert await probe(etcd, refuses) == Health(False, "not answering (ConnectError)")


@pytest.mark.parametrize(
    "name,detail",
    [("delhi-api-1", "serving"), ("delhi-web-2", "serving"), ("delhi-fe", "balancing")],
)
async def test_http_probes(name: str, detail: str) -> None:
    node = PLAN.node(name)
    assert await probe(node, answers(200, text="ok")) == Health(True, detail)
    assert await probe(node, answers(503, text="no")) == Health(False, "health check answered 503")


def test_patroni_state_is_read_once_for_status_and_probe() -> None:
    state = read_patroni(
        {"state": "running", "role": "master", "timeline": 3, "replication_state": None}
    )
    assert state == PatroniState("primary", "running", 3, None)
    assert state.running_primary and state.db_role is DbRole.PRIMARY
    assert not read_patroni({"state": "stopped", "role": "primary"}).running_primary
    assert read_patroni({"role": "uninitialized"}).db_role is None
    with pytest.raises(ValueError):
        read_patroni(["not", "an", "object"])


def test_sync_reads_use_the_same_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = {
        DB.health_url: {"state": "running", "role": "replica", "replication_state": "streaming"},
        PLAN.node("delhi-etcd").health_url: {"health": "true"},
    }

    def get(url: str, timeout: float, verify: object = True) -> httpx.Response:
        if url not in bodies:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json=bodies[url])

    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setattr(health, "trust", lambda node: True)
    assert health.patroni_state(DB) == PatroniState("replica", "running", None, "streaming")
    assert health.patroni_state(PLAN.node("chennai-db")) is None
    assert health.probe_now(PLAN.node("delhi-etcd")) == Health(True, "healthy member")
    assert not health.probe_now(PLAN.node("chennai-etcd")).healthy


def test_etcd_reader_needs_a_200() -> None:
    assert not read_etcd(500, {"health": "true"}).healthy


def test_patroni_sync_standbys_come_from_its_cluster_view() -> None:
    body = {
        "members": [
            {"name": "delhi-db", "role": "leader"},
            {"name": "chennai-db", "role": "sync_standby"},
            {"name": "pune-db", "role": "replica"},
        ]
    }
    assert health.read_sync_standbys(body) == frozenset({"chennai-db"})
    assert health.read_sync_standbys({"members": []}) == frozenset()
    with pytest.raises(ValueError):
        health.read_sync_standbys({"members": "x"})
    with pytest.raises(ValueError):
        health.read_sync_standbys([])
