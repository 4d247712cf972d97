"""The write gate's rules (app/api/gate.py), on an event loop without a database."""

from __future__ import annotations

import asyncio

import pytest

from app.api.errors import ApiError
from app.api.gate import MAX_HOLD_S, WriteGate
from app.api.validation import parse_hold


async def written(gate: WriteGate, log: list[str], name: str, work_s: float = 0.0) -> None:
    async with gate.write():
        await asyncio.sleep(work_s)
        log.append(name)


def test_writes_pass_an_open_gate_and_are_counted() -> None:
    async def run() -> None:
        gate, log = WriteGate(), []
        task = asyncio.create_task(written(gate, log, "a", 0.05))
        await asyncio.sleep(0.01)
        assert gate.state().in_flight == 1 and not gate.paused
        await task
        assert log == ["a"] and gate.state().in_flight == 0

    asyncio.run(run())


def test_pause_waits_for_running_writes_and_holds_new_ones_until_resume() -> None:
    async def run() -> None:
        gate, log = WriteGate(), []
        running = asyncio.create_task(written(gate, log, "running", 0.1))
        await asyncio.sleep(0.01)
        state = await gate.pause(hold_s=5, drain_s=1)
        assert log == ["running"] and state.in_flight == 0 and state.paused
        held = asyncio.create_task(written(gate, log, "held"))
        await asyncio.sleep(0.05)
        assert log == ["running"] and gate.state().held == 1
        assert gate.resume().held == 1
        await asyncio.gather(running, held)
        assert log == ["running", "held"] and not gate.paused

    asyncio.run(run())


def test_drain_is_bounded_and_reports_what_still_runs() -> None:
    async def run() -> None:
        gate, log = WriteGate(), []
        slow = asyncio.create_task(written(gate, log, "slow", 0.5))
        await asyncio.sleep(0.01)
        state = await gate.pause(hold_s=5, drain_s=0.05)
        assert state.in_flight == 1 and log == []
        gate.resume()
        await slow

    asyncio.run(run())


def test_a_pause_ends_by_itself_and_a_second_pause_restarts_the_bound() -> None:
    async def run() -> None:
        gate, log = WriteGate(), []
        loop = asyncio.get_running_loop()
        await gate.pause(hold_s=0.2, drain_s=0)
        started = loop.time()
        held = asyncio.create_task(written(gate, log, "held"))
        await asyncio.sleep(0.1)
        await gate.pause(hold_s=0.3, drain_s=0)  # a second pause: 0.3 s from now
        await held
        assert log == ["held"] and loop.time() - started >= 0.38
        assert not gate.paused

    asyncio.run(run())


def test_resume_without_pause_is_harmless() -> None:
    async def run() -> None:
        gate = WriteGate()
        assert gate.resume().held == 0 and not gate.paused

    asyncio.run(run())


@pytest.mark.parametrize("hold", [0, -1, MAX_HOLD_S + 0.1, float("nan")])
def test_pause_refuses_holds_outside_its_bound(hold: float) -> None:
    async def run() -> None:
        with pytest.raises(ValueError, match="hold_s"):
            await WriteGate().pause(hold_s=hold, drain_s=0)

    asyncio.run(run())


def test_parse_hold() -> None:
    assert parse_hold(b"") == 5.0
    assert parse_hold(b"hold_s=2.5") == 2.5
    assert parse_hold(b"hold_s=10") == MAX_HOLD_S
    for bad in (b"hold_s=0", b"hold_s=inf", b"hold_s=nan", b"hold_s=1&hold_s=2", b"x=1"):
        with pytest.raises(ApiError) as err:
            parse_hold(bad)
        assert err.value.status == 400 and err.value.field in ("hold_s", "x")
