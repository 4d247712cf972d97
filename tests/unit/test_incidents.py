"""Incidents from checks: Route 53's threshold rule, start and end times, resuming."""

from __future__ import annotations

import pytest

from geoha.ops.incidents import Incident, Observation, SubjectState, close_all, resume, track
from geoha.ops.monitor_status import expected_shares, incident_status


def seen(ok: bool, detail: str = "", subject: str = "entry delhi") -> Observation:
    return Observation(subject, "delhi", ok, detail or ("answered 200" if ok else "refused"))


def run(
    rounds: list[bool], threshold: int = 3, start: float = 100.0
) -> tuple[dict[str, SubjectState], list[Incident], list[Incident]]:
    """Feed one observation per second; every incident opened and closed, in order."""
    states: dict[str, SubjectState] = {}
    opened: list[Incident] = []
    closed: list[Incident] = []
    for i, ok in enumerate(rounds):
        result = track(states, [seen(ok, "" if ok else f"refused {i}")], start + i, threshold)
        states = result.states
        opened += result.opened
        closed += result.closed
    return states, opened, closed


def test_an_incident_opens_after_exactly_threshold_failures_and_starts_at_the_first() -> None:
    _, opened, _ = run([True, False, False])
    assert opened == []
    states, opened, closed = run([True, False, False, False])
    assert opened == [Incident("entry delhi", "delhi", "refused 1", started_at=101.0)]
    assert closed == [] and states["entry delhi"].incident == opened[0]


def test_it_closes_after_as_many_passes_and_ends_at_the_first_of_them() -> None:
    _, opened, closed = run([False, False, False, True, True])
    assert len(opened) == 1 and closed == []
    _, _, closed = run([False, False, False, True, True, True])
    assert closed == [
        Incident(
            "entry delhi", "delhi", "refused 0", 100.0, ended_at=103.0, resolution="answered 200"
        )
    ]
    assert closed[0].duration_s(now=999) == 3.0


def test_a_broken_streak_neither_opens_nor_closes() -> None:
    _, opened, _ = run([False, False, True, False, False, True])
    assert opened == []
    _, opened, closed = run([False] * 3 + [True, True, False] + [True] * 2)
    assert len(opened) == 1 and closed == []


def test_a_threshold_of_one_and_a_bad_threshold() -> None:
    _, opened, closed = run([False, True], threshold=1)
    assert [i.started_at for i in opened] == [100.0] and [i.ended_at for i in closed] == [101.0]
    with pytest.raises(ValueError, match="threshold 0"):
        track({}, [], 0.0, 0)


def test_subjects_are_independent_and_an_absent_one_keeps_its_state() -> None:
    states: dict[str, SubjectState] = {}
    for t in range(3):
        states = track(states, [seen(False), seen(True, subject="api delhi")], t, 3).states
    assert states["entry delhi"].incident is not None
    assert states["api delhi"].incident is None
    after = track(states, [seen(True, subject="api delhi")], 3, 3)
    assert after.states["entry delhi"] == states["entry delhi"]


def test_close_all_and_resume() -> None:
    states, opened, _ = run([False] * 3)
    result = close_all(states, 200.0, "deployment stopped")
    assert result.states == {} and result.opened == []
    assert [(i.ended_at, i.resolution) for i in result.closed] == [(200.0, "deployment stopped")]

    resumed = resume([*opened, result.closed[0]], threshold=3)
    assert list(resumed) == ["entry delhi"]  # only the open one comes back
    later, closes = resumed, []
    for t in range(3):
        result = track(later, [seen(True)], 300.0 + t, 3)
        later, closes = result.states, [*closes, len(result.closed)]
    assert closes == [0, 0, 1]  # a resumed incident still needs `threshold` passes
    assert [(i.started_at, i.ended_at) for i in result.closed] == [(100.0, 300.0)]


def test_incident_status_shows_an_open_incident_lasting_until_now() -> None:
    incident = Incident("primary", None, "no running primary", 10.0, id=7)
    status = incident_status(incident, now=25.5)
    assert status == {
        "id": 7,
        "subject": "primary",
        "region": None,
        "cause": "no running primary",
        "started_at": 10.0,
        "ended_at": None,
        "duration_s": 15.5,
        "resolution": None,
        "open": True,
    }


@pytest.mark.parametrize(
    ("weights", "healthy", "expected"),
    [
        ({"delhi": 50, "chennai": 50}, {"delhi": True, "chennai": True}, [0.5, 0.5]),
        ({"delhi": 80, "chennai": 20}, {"delhi": True, "chennai": True}, [0.8, 0.2]),
        ({"delhi": 50, "chennai": 50}, {"delhi": False, "chennai": True}, [0.0, 1.0]),
        ({"delhi": 50, "chennai": 50}, {"delhi": False, "chennai": False}, [0.5, 0.5]),
        ({"delhi": 0, "chennai": 0}, {"delhi": True, "chennai": True}, [0.5, 0.5]),
        ({"delhi": 0, "chennai": 10}, {"delhi": True, "chennai": False}, [1.0, 0.0]),
    ],
)
def test_expected_shares_follow_route53(
    weights: dict[str, int], healthy: dict[str, bool], expected: list[float]
) -> None:
    assert list(expected_shares(weights, healthy).values()) == expected
