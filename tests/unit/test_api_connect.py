"""A pool connect the caller gives up on runs to its end: what it makes is discarded,
how it failed is retrieved, and nothing is left for the event loop to complain about."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from app.api.db import run_to_end


def loop_complaints(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """What the loop's exception handler is told from now on (a never-retrieved failure)."""
    complaints: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: complaints.append(context))
    return complaints


def test_the_result_comes_back() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "connection"

    async def run() -> str:
        return await run_to_end(work(), discard=lambda _: pytest.fail("not given up"))

    assert asyncio.run(run()) == "connection"


def test_a_caller_giving_up_does_not_cancel_the_work_and_its_result_is_discarded() -> None:
    asyncio.run(giving_up())


async def giving_up() -> None:
    finished, discarded = asyncio.Event(), []

    async def work() -> str:
        await asyncio.sleep(0.05)  # still connecting when the caller gives up
        finished.set()
        return "connection"

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await run_to_end(work(), discard=discarded.append)
    assert discarded == []
    await asyncio.wait_for(finished.wait(), 1)
    await asyncio.sleep(0)  # the done callback
    assert discarded == ["connection"]


def test_a_failure_nobody_waits_for_is_retrieved() -> None:
    asyncio.run(failing())


async def failing() -> None:
    complaints = loop_complaints(asyncio.get_running_loop())

    async def work() -> str:
        await asyncio.sleep(0.05)
        raise ConnectionError("unexpected connection_lost() call")

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await run_to_end(work(), discard=lambda _: pytest.fail("it failed"))
    await asyncio.sleep(0.1)
    gc.collect()  # a never-retrieved exception is reported when its future is collected
    await asyncio.sleep(0)
    assert complaints == []
