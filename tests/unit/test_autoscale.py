"""The autoscaler's decision, case by case: a pure function of one group snapshot."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from geoha.ops.autoscale import Decision, Group, Instance, Move, ScalePolicy, decide, recommend

POLICY = ScalePolicy(
    min=1,
    max=5,
    scale_up_cpu_percent=70,
    scale_down_cpu_percent=30,
    tolerance=0.1,
    step=1,
    scale_out_cooldown_s=5,
    scale_in_stabilization_s=60,
)
NOW = 1000.0


def group(*cpus: float | None, desired: int | None = None, **changes: object) -> Group:
    """api/chennai with one healthy instance per CPU figure, watched for 10 minutes."""
    instances = tuple(Instance(f"chennai-api-{i}", True, c) for i, c in enumerate(cpus, 1))
    base = Group(
        region="chennai",
        tier="api",
        now=NOW,
        desired=len(cpus) if desired is None else desired,
        instances=instances,
        last_change_at=None,
        since=NOW - 600,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_above_the_threshold_grows_by_one_step() -> None:
    decision = decide(group(90, 86), POLICY)
    assert (decision.move, decision.desired) == (Move.OUT, 3)
    assert decision.reason == "api/chennai: 2 -> 3, CPU 88 % > 70 % over 10s"


def test_within_the_tolerance_band_holds() -> None:
    assert decide(group(76, 76), POLICY).move is Move.HOLD  # 76 <= 70 x 1.1
    assert decide(group(78, 78), POLICY).move is Move.OUT


def test_between_the_thresholds_holds() -> None:
    decision = decide(group(50, 40), POLICY)
    assert (decision.move, decision.desired, decision.recommendation) == (Move.HOLD, 2, 2)


def test_the_step_bounds_a_jump_and_max_bounds_the_count() -> None:
    assert recommend(2, 100, POLICY) == 3  # ceil(2 x 100 / 70) = 3 anyway
    assert recommend(3, 100, POLICY) == 4  # would be 5
    assert recommend(3, 100, replace(POLICY, step=5)) == 5
    assert recommend(5, 100, replace(POLICY, step=5)) == 5  # max
    decision = decide(group(99, 99, 99, 99, 99), POLICY)
    assert (decision.move, decision.desired) == (Move.HOLD, 5)


def test_the_cooldown_holds_a_second_scale_out() -> None:
    decision = decide(group(95, 95, last_change_at=NOW - 2), POLICY)
    assert (decision.move, decision.desired, decision.recommendation) == (Move.HOLD, 2, 3)
    assert "cooldown 5s" in decision.reason
    assert decide(group(95, 95, last_change_at=NOW - 6), POLICY).move is Move.OUT


def test_shrinks_only_after_the_stabilization_window() -> None:
    low = group(10, 12)
    decision = decide(low, POLICY)
    assert (decision.move, decision.desired) == (Move.IN, 1)
    assert decision.reason == "api/chennai: 2 -> 1, CPU 11 % < 30 % for 60s"
    young = decide(replace(low, since=NOW - 20), POLICY)
    assert young.move is Move.HOLD and "watched for 20s only" in young.reason


def test_a_load_around_the_threshold_does_not_flap() -> None:
    """1 <-> 2 under a load that rises above 70 % and falls below 30 % in turn: it grows
    once, then holds for as long as a higher count was asked for within the window."""
    policy, state = POLICY, group(50)
    recent: list[tuple[float, int]] = []
    sizes = []
    for second in range(0, 240, 5):
        per_instance = 150 / state.desired if (second // 20) % 2 == 0 else 20 / state.desired
        cpus = tuple(per_instance for _ in range(state.desired))
        snapshot = group(*cpus, now=second, since=0.0, recent=tuple(recent))
        snapshot = replace(snapshot, last_change_at=state.last_change_at)
        decision: Decision = decide(snapshot, policy)
        recent = [(at, n) for at, n in recent if at >= second - 60] + [
            (second, decision.recommendation)
        ]
        changed = decision.desired != snapshot.desired
        state = replace(
            snapshot,
            desired=decision.desired,
            last_change_at=second if changed else snapshot.last_change_at,
        )
        sizes.append(decision.desired)
    assert sizes[0] == 2 and set(sizes) == {2}  # grew once, never fell back in the cycle
    changes = sum(1 for a, b in itertools.pairwise(sizes) if a != b)
    assert changes <= 2


def test_unhealthy_instances_do_not_count_and_min_is_healed() -> None:
    instances = (Instance("delhi-api-1", False, None), Instance("delhi-api-2", False, 50.0))
    decision = decide(replace(group(desired=2), instances=instances, region="delhi"), POLICY)
    assert (decision.move, decision.desired) == (Move.HEAL, 3)
    assert "0 healthy of 2, fewer than min 1, 2 failed" in decision.reason
    started = Instance("delhi-api-3", False, None, starting=True)
    waiting = decide(replace(group(desired=3), instances=(*instances, started)), POLICY)
    assert (waiting.move, waiting.desired) == (Move.HOLD, 3)
    mixed = (Instance("a", True, 90.0), Instance("b", False, 5.0))
    assert decide(replace(group(desired=2), instances=mixed), POLICY).move is Move.OUT


def test_no_cpu_figure_yet_holds() -> None:
    decision = decide(group(None, None), POLICY)
    assert decision.move is Move.HOLD and "no CPU figure" in decision.reason


@pytest.mark.parametrize(("util", "step", "expected"), [(0.0, 1, 2), (0.0, 5, 1), (25.0, 5, 2)])
def test_an_idle_tier_shrinks_by_at_most_a_step(util: float, step: int, expected: int) -> None:
    assert recommend(3, util, replace(POLICY, step=step)) == expected
