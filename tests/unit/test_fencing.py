"""The confirmed-death decision, case by case: a pure function of one snapshot."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.api.vantage import observe
from geoha.ops.fencing import (
    Action,
    Policy,
    Snapshot,
    StandbyView,
    VantageView,
    decide,
)

NOW = 1000.0
REGIONS = ("delhi", "chennai", "mumbai")
POLICY = Policy(fast=True, synchronous=True, async_opt_in=False, fence_after_s=2.5, max_age_s=1.5)


def failing_for(seconds: float) -> VantageView:
    return VantageView(observed_at=NOW - 0.2, failing_since=NOW - seconds)


REACHING = VantageView(observed_at=NOW - 0.2, failing_since=None)


def snapshot(**changes: object) -> Snapshot:
    """The primary delhi-db dead for 3 s, seen from every region; chennai-db in sync."""
    base = Snapshot(
        now=NOW,
        primary="delhi-db",
        lease="7587883441374893058",
        regions=REGIONS,
        vantage={r: failing_for(3.0) for r in REGIONS},
        standby=StandbyView("chennai-db", in_sync=True, observed_at=NOW - 0.5),
        etcd_healthy=2,
        etcd_members=3,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_dead_from_everywhere_long_enough_is_fenced_with_its_lease() -> None:
    decision = decide(snapshot(), POLICY)
    assert decision.action is Action.FENCE
    assert (decision.primary, decision.lease) == ("delhi-db", "7587883441374893058")
    assert "unreachable from every region for 3.0s" in decision.reason
    assert "etcd 2 of 3 healthy" in decision.reason and "chennai-db in sync" in decision.reason


def test_not_long_enough_yet_is_a_wait() -> None:
    vantage = {**snapshot().vantage, "mumbai": failing_for(1.0)}
    decision = decide(snapshot(vantage=vantage), POLICY)
    assert decision.action is Action.WAIT and "for only 1.0s" in decision.reason


@pytest.mark.parametrize(
    ("reaching", "why"),
    [
        (("chennai",), "partitioned from delhi and mumbai, chennai still reaches it"),
        (("delhi",), "the primary's region cut off from both others: its own region reaches it"),
        (("delhi", "mumbai"), "cut off from chennai alone"),
    ],
)
def test_isolation_is_not_death(reaching: tuple[str, ...], why: str) -> None:
    vantage = {r: REACHING if r in reaching else failing_for(30.0) for r in REGIONS}
    decision = decide(snapshot(vantage=vantage), POLICY)
    assert decision.action is Action.NOTHING, why
    assert "isolation is not death" in decision.reason
    assert ", ".join(reaching) in decision.reason


def test_witness_etcd_down_with_a_dead_primary_still_has_a_quorum() -> None:
    # delhi-db dead, mumbai-etcd dead too: delhi-etcd and chennai-etcd are 2 of 3
    assert decide(snapshot(etcd_healthy=2), POLICY).action is Action.FENCE


def test_etcd_without_quorum_does_nothing() -> None:
    # the whole delhi region and the witness gone: chennai's member is alone
    decision = decide(snapshot(etcd_healthy=1), POLICY)
    assert decision.action is Action.NOTHING and "no quorum (1 of 3" in decision.reason


@pytest.mark.parametrize(
    ("standby", "expected"),
    [
        (None, "no synchronous standby"),
        (StandbyView("chennai-db", in_sync=False, observed_at=NOW - 0.5), "was not in sync"),
        (StandbyView("chennai-db", in_sync=True, observed_at=NOW - 9.0), "9.0s old"),
    ],
)
def test_a_standby_not_known_in_sync_does_nothing(
    standby: StandbyView | None, expected: str
) -> None:
    decision = decide(snapshot(standby=standby), POLICY)
    assert decision.action is Action.NOTHING and expected in decision.reason


def test_a_missing_vantage_point_proves_nothing() -> None:
    vantage = {r: v for r, v in snapshot().vantage.items() if r != "mumbai"}
    decision = decide(snapshot(vantage=vantage), POLICY)
    assert decision.action is Action.NOTHING and "no observation of delhi-db from mumbai" in (
        decision.reason
    )


def test_a_stale_observation_proves_nothing() -> None:
    vantage = {**snapshot().vantage, "chennai": VantageView(NOW - 5.0, NOW - 8.0)}
    decision = decide(snapshot(vantage=vantage), POLICY)
    assert decision.action is Action.NOTHING and "chennai's observation is 5.0s old" in (
        decision.reason
    )


def test_an_observation_from_the_future_is_a_clock_jump() -> None:
    vantage = {**snapshot().vantage, "delhi": VantageView(NOW + 30.0, NOW - 3.0)}
    decision = decide(snapshot(vantage=vantage), POLICY)
    assert decision.action is Action.NOTHING and "in the future" in decision.reason


def test_the_clock_jumping_back_makes_every_observation_future() -> None:
    decision = decide(snapshot(now=NOW - 60.0), POLICY)
    assert decision.action is Action.NOTHING and "in the future" in decision.reason


def test_no_leader_or_no_lease_is_patronis_business() -> None:
    assert decide(snapshot(primary=None), POLICY).action is Action.NOTHING
    assert decide(snapshot(lease=None), POLICY).action is Action.NOTHING


def test_fast_off_does_nothing() -> None:
    decision = decide(snapshot(), replace(POLICY, fast=False))
    assert decision.action is Action.NOTHING and "failover.fast = false" in decision.reason


def test_async_needs_the_opt_in() -> None:
    async_policy = replace(POLICY, synchronous=False)
    assert decide(snapshot(standby=None), async_policy).action is Action.NOTHING
    opted_in = replace(async_policy, async_opt_in=True)
    assert decide(snapshot(standby=None), opted_in).action is Action.FENCE


def test_observe_keeps_the_first_failure_and_resets_on_success() -> None:
    view = observe(None, reached=False, at=10.0)
    assert view == VantageView(10.0, 10.0)
    view = observe(view, reached=False, at=11.0)
    assert view == VantageView(11.0, 10.0)
    assert observe(view, reached=True, at=12.0) == VantageView(12.0, None)


def test_a_flapping_probe_never_adds_up_to_a_fence() -> None:
    views: dict[str, VantageView] = {}
    actions = []
    for step in range(40):  # 10 s of rounds every 0.25 s; chennai's probe succeeds every 4th
        at = NOW + step * 0.25
        for region in REGIONS:
            reached = region == "chennai" and step % 4 == 3
            views[region] = observe(views.get(region), reached, at)
        actions.append(decide(snapshot(now=at, vantage=dict(views)), POLICY).action)
    assert Action.FENCE not in actions
    assert set(actions) == {Action.NOTHING, Action.WAIT}


def test_a_lost_region_with_its_primary_dead_on_the_host_is_fenced() -> None:
    # kill-region delhi: delhi's API went with it, the host has no process of delhi-db left
    vantage = {r: failing_for(3.0) for r in ("chennai", "mumbai")}
    decision = decide(snapshot(vantage=vantage, confirmed_dead=True), POLICY)
    assert decision.action is Action.FENCE
    assert "unreachable from chennai, mumbai for 3.0s" in decision.reason
    assert "no process of it left on its host" in decision.reason
    stale = {**vantage, "delhi": VantageView(observed_at=NOW - 10, failing_since=NOW - 12)}
    assert decide(snapshot(vantage=stale, confirmed_dead=True), POLICY).action is Action.FENCE


def test_a_confirmed_death_still_needs_the_other_regions_and_their_time() -> None:
    vantage = {"chennai": failing_for(3.0), "mumbai": failing_for(1.0)}
    assert decide(snapshot(vantage=vantage, confirmed_dead=True), POLICY).action is Action.WAIT
    reaching = {"chennai": REACHING, "mumbai": failing_for(3.0)}
    decision = decide(snapshot(vantage=reaching, confirmed_dead=True), POLICY)
    assert decision.action is Action.NOTHING and "isolation is not death" in decision.reason
    decision = decide(snapshot(vantage={}, confirmed_dead=True), POLICY)
    assert decision.action is Action.NOTHING
    assert "no fresh observation of delhi-db from any region" in decision.reason
    future = {**vantage, "mumbai": VantageView(observed_at=NOW + 5, failing_since=NOW - 3)}
    decision = decide(snapshot(vantage=future, confirmed_dead=True), POLICY)
    assert decision.action is Action.NOTHING and "in the future" in decision.reason


def test_without_the_hosts_word_a_lost_region_proves_nothing() -> None:
    # a partition looks the same from outside: delhi's view missing, delhi-db alive
    vantage = {r: failing_for(30.0) for r in ("chennai", "mumbai")}
    decision = decide(snapshot(vantage=vantage, confirmed_dead=False), POLICY)
    assert decision.action is Action.NOTHING
    assert decision.reason == "no observation of delhi-db from delhi"
