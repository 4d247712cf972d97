"""Incidents from a stream of checks: when something failed, why, and when it recovered.

Pure: `track` takes each subject's state and one round of observations and
returns the new states with the incidents opened and closed. The rule is
Route 53's for a health check, applied to every subject the monitor watches
(a region's entry, a region's API, a database node, the primary): an incident
opens after `threshold` failed checks in a row and closes after as many
passed ones. It starts at the first failed check of the streak that opened it,
with that check's detail as its cause, and ends at the first passed check of
the streak that closed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Observation:
    """One check of one subject ("entry delhi", "database chennai-db", "primary")."""

    subject: str
    region: str | None
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Incident:
    subject: str
    region: str | None
    cause: str
    """The detail of the first failed check ("connection refused")."""
    started_at: float
    ended_at: float | None = None
    resolution: str | None = None
    """Why it ended: the first passed check's detail, or "deployment stopped"."""
    id: int | None = None
    """Its row in the monitor's history, once stored."""

    @property
    def open(self) -> bool:
        return self.ended_at is None

    def duration_s(self, now: float) -> float:
        """How long it lasted, or has lasted so far."""
        return (self.ended_at if self.ended_at is not None else now) - self.started_at


@dataclass(frozen=True, slots=True)
class SubjectState:
    """A subject's streak of checks, and its open incident if it has one."""

    failures: int = 0
    """Failed checks in a row (0 after a passed one)."""
    successes: int = 0
    """Passed checks in a row (0 after a failed one)."""
    first_failure: Observation | None = None
    first_failure_at: float | None = None
    first_success_at: float | None = None
    incident: Incident | None = None


@dataclass(frozen=True, slots=True)
class Tracked:
    states: dict[str, SubjectState]
    opened: list[Incident]
    closed: list[Incident]


def track(
    states: Mapping[str, SubjectState],
    observations: Iterable[Observation],
    now: float,
    threshold: int,
) -> Tracked:
    """Fold one round of observations (taken at `now`) into the subjects' states.

    A subject missing from the round keeps its state: no check, no change.
    """
    if threshold < 1:
        raise ValueError(f"threshold {threshold} is not at least 1")
    result = dict(states)
    opened: list[Incident] = []
    closed: list[Incident] = []
    for seen in observations:
        state = _observe(result.get(seen.subject, SubjectState()), seen, now)
        incident = state.incident
        if incident is None and state.failures >= threshold:
            first = state.first_failure or seen
            assert state.first_failure_at is not None  # set by the first failure
            incident = Incident(seen.subject, seen.region, first.detail, state.first_failure_at)
            opened.append(incident)
            state = replace(state, incident=incident)
        elif incident is not None and state.successes >= threshold:
            assert state.first_success_at is not None  # set by the first success
            ended = replace(incident, ended_at=state.first_success_at, resolution=seen.detail)
            closed.append(ended)
            state = replace(state, incident=None)
        result[seen.subject] = state
    return Tracked(result, opened, closed)


def _observe(state: SubjectState, seen: Observation, now: float) -> SubjectState:
    if seen.ok:
        if state.successes == 0:
            return replace(state, successes=1, failures=0, first_success_at=now)
        return replace(state, successes=state.successes + 1)
    if state.failures == 0:
        return replace(state, failures=1, successes=0, first_failure=seen, first_failure_at=now)
    return replace(state, failures=state.failures + 1)


def close_all(states: Mapping[str, SubjectState], now: float, why: str) -> Tracked:
    """End every open incident at `now` (the deployment stopped) and forget the streaks."""
    closed = [
        replace(s.incident, ended_at=now, resolution=why)
        for s in states.values()
        if s.incident is not None
    ]
    return Tracked({}, [], closed)


def resume(incidents: Iterable[Incident], threshold: int) -> dict[str, SubjectState]:
    """The states of subjects whose incidents a previous monitor left open: still failing,
    so that `threshold` passed checks close them."""
    return {
        i.subject: SubjectState(
            failures=threshold,
            first_failure=Observation(i.subject, i.region, False, i.cause),
            first_failure_at=i.started_at,
            incident=i,
        )
        for i in incidents
        if i.open
    }
