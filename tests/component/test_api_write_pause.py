"""Pausing writes for a switchover (app/api/gate.py) on a real database: held writes
land after resume or expiry, running ones are waited for, reads go on, and only a
caller with the instance's admin token may pause."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest

from app.api.config import Settings
from tests.component.conftest import running_api
from tests.component.pg import PgCluster

pytestmark = [pytest.mark.anyio, pytest.mark.component]

THEMES = "/api/v1/themes"
TOKEN = "t" * 32
AUTH = {"authorization": f"Bearer {TOKEN}"}
PAUSE = "/admin/writes/pause"
RESUME = "/admin/writes/resume"


@pytest.fixture
async def admin(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(make_settings(admin_token=TOKEN)) as client:
        yield client


async def create(client: httpx.AsyncClient, name: str, done: list[httpx.Response]) -> None:
    done.append(await client.post(THEMES, json={"name": name, "config": {}}))


async def test_a_held_write_lands_after_resume_and_reads_go_on(admin: httpx.AsyncClient) -> None:
    paused = await admin.post(PAUSE, params={"hold_s": "5"}, headers=AUTH)
    assert paused.status_code == 200
    assert paused.json() | {"instance": None} == {
        "instance": None,
        "paused": True,
        "hold_s": 5.0,
        "in_flight": 0,
        "held": 0,
    }
    done: list[httpx.Response] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(create, admin, "held", done)
        await anyio.sleep(0.5)
        assert done == []  # held at the gate
        assert (await admin.get(THEMES)).status_code == 200  # reads are not held
        resumed = await admin.post(RESUME, headers=AUTH)
        assert resumed.status_code == 200
        assert resumed.json()["paused"] is False and resumed.json()["held"] == 1
    assert done[0].status_code == 201
    listed = await admin.get(THEMES, headers={"x-min-lsn": done[0].headers["x-commit-lsn"]})
    assert [t["name"] for t in listed.json()["items"]] == ["held"]


async def test_a_pause_ends_by_itself_after_its_hold(admin: httpx.AsyncClient) -> None:
    assert (await admin.post(PAUSE, params={"hold_s": "0.8"}, headers=AUTH)).status_code == 200
    done: list[httpx.Response] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(create, admin, "expired", done)
        await anyio.sleep(0.3)
        assert done == []
    assert done[0].status_code == 201  # released by the hold's end, with no resume


async def test_a_pause_waits_for_the_running_write(admin: httpx.AsyncClient, pg: PgCluster) -> None:
    created = await admin.post(THEMES, json={"name": "locked", "config": {}})
    theme = f"{THEMES}/{created.json()['id']}"
    done: list[httpx.Response] = []
    answers: list[httpx.Response] = []

    async def replace() -> None:
        done.append(await admin.put(theme, json={"name": "renamed", "config": {}}))

    async def pause() -> None:
        answers.append(await admin.post(PAUSE, headers=AUTH))

    with pg.connect(pg.primary) as lock:
        lock.execute("BEGIN")
        lock.execute("SELECT 1 FROM app.themes WHERE id = %s FOR UPDATE", (created.json()["id"],))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(replace)
            await anyio.sleep(0.3)  # the PUT now waits for the row lock
            tasks.start_soon(pause)
            await anyio.sleep(0.5)
            assert answers == [] and done == []  # the pause waits for the running write
            lock.execute("COMMIT")
    assert done[0].status_code == 200
    assert answers[0].json()["in_flight"] == 0 and answers[0].json()["paused"] is True
    assert (await admin.post(RESUME, headers=AUTH)).json()["held"] == 0


async def test_only_the_admin_token_may_pause(admin: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"authorization": "Bearer wrong-token-of-some-length"},
        {"authorization": TOKEN},
    ):
        answer = await admin.post(PAUSE, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]["field"] == "authorization"
    assert (await admin.post(RESUME)).status_code == 401
    for bad in ("0", "-1", "11", "nan", "x", ""):
        answer = await admin.post(PAUSE, params={"hold_s": bad}, headers=AUTH)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "hold_s"
    answer = await admin.post(PAUSE, params={"for": "5"}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "for"
    assert (await admin.get(PAUSE, headers=AUTH)).status_code == 405
    # nothing was paused by the refused calls
    assert (await admin.post(THEMES, json={"name": "free", "config": {}})).status_code == 201


async def test_without_a_token_the_admin_routes_are_off(client: httpx.AsyncClient) -> None:
    answer = await client.post(PAUSE, headers=AUTH)
    assert answer.status_code == 404
    assert "GEOHA_ADMIN_TOKEN_FILE" in answer.json()["error"]["message"]
