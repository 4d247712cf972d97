"""Which slots carry out an autoscaler decision, and the CPU window: pure, case by case."""

from __future__ import annotations

from dataclasses import replace

from geoha.ops.autoscale import Slot, Step, StepKind, replacements, slot_steps
from geoha.runtime.autoscaler import CpuWindow

DRAIN_TIMEOUT_S = 30.0


def slot(index: int, **changes: object) -> Slot:
    """delhi-api-INDEX: by default a healthy member enabled in the LB, nothing in flight."""
    base = Slot(
        name=f"delhi-api-{index}",
        index=index,
        member=True,
        free=False,
        healthy=True,
        failed=False,
        lb="ready",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def free(index: int) -> Slot:
    return slot(index, member=False, free=True, healthy=False, lb="maint")


def kinds(steps: list[Step]) -> list[tuple[str, str]]:
    return [(s.kind.value, s.slot.rsplit("-", 1)[1]) for s in steps]


def test_a_steady_group_needs_nothing() -> None:
    assert slot_steps([slot(1), slot(2), free(3)], [], 2, DRAIN_TIMEOUT_S) == []


def test_scale_out_joins_the_lowest_free_slots() -> None:
    slots = [slot(1), free(2), free(3), free(4)]
    assert kinds(slot_steps(slots, [], 3, DRAIN_TIMEOUT_S)) == [("join", "2"), ("join", "3")]


def test_a_member_is_enabled_only_once_healthy() -> None:
    starting = slot(2, healthy=False, lb="maint")
    assert slot_steps([slot(1), starting], [], 2, DRAIN_TIMEOUT_S) == []
    ready = replace(starting, healthy=True)
    assert kinds(slot_steps([slot(1), ready], [], 2, DRAIN_TIMEOUT_S)) == [("enable", "2")]


def test_scale_in_drains_the_highest_healthy_slot_first() -> None:
    steps = slot_steps([slot(1), slot(2), slot(3)], [], 2, DRAIN_TIMEOUT_S)
    assert kinds(steps) == [("drain", "3")]


def test_scale_in_takes_an_unhealthy_member_first_and_removes_it_at_once() -> None:
    sick = slot(1, healthy=False)
    steps = slot_steps([sick, slot(2), slot(3)], [], 2, DRAIN_TIMEOUT_S)
    assert kinds(steps) == [("disable", "1"), ("leave", "1")]


def test_a_drained_slot_leaves_once_nothing_is_in_flight() -> None:
    busy = slot(2, lb="drain", in_flight=3, draining_for=2.0)
    assert slot_steps([slot(1), busy], [], 1, DRAIN_TIMEOUT_S) == []
    done = replace(busy, in_flight=0)
    assert kinds(slot_steps([slot(1), done], [], 1, DRAIN_TIMEOUT_S)) == [
        ("disable", "2"),
        ("leave", "2"),
    ]


def test_a_drain_gives_up_after_its_timeout() -> None:
    stuck = slot(2, lb="drain", in_flight=1, draining_for=DRAIN_TIMEOUT_S)
    steps = slot_steps([slot(1), stuck], [], 1, DRAIN_TIMEOUT_S)
    assert kinds(steps) == [("disable", "2"), ("leave", "2")]
    assert steps[0].why == "1 requests still in flight after 30s"


def test_a_drain_just_begun_waits_a_tick_even_with_nothing_counted() -> None:
    begun = slot(2, lb="drain", in_flight=0, draining_for=0.0)
    assert slot_steps([slot(1), begun], [], 1, DRAIN_TIMEOUT_S) == []


def test_a_draining_slot_does_not_count_towards_the_group() -> None:
    draining = slot(2, lb="drain", in_flight=2, draining_for=1.0)
    steps = slot_steps([slot(1), draining, free(3)], [], 2, DRAIN_TIMEOUT_S)
    assert kinds(steps) == [("join", "3")]


def test_a_failed_member_is_replaced_by_a_free_slot() -> None:
    held = slot(1, healthy=False, failed=True, lb="ready")
    slots = [held, slot(2), free(3)]
    swaps = replacements(slots)
    assert swaps == [("delhi-api-1", "delhi-api-3")]
    assert kinds(slot_steps(slots, swaps, 2, DRAIN_TIMEOUT_S)) == [
        ("disable", "1"),
        ("leave", "1"),
        ("join", "3"),
    ]


def test_without_a_free_slot_a_failed_member_stays() -> None:
    slots = [slot(1, healthy=False, failed=True, lb="maint"), slot(2)]
    assert replacements(slots) == []
    assert slot_steps(slots, [], 2, DRAIN_TIMEOUT_S) == []


def test_the_lb_is_kept_in_step_with_the_members() -> None:
    """After an LB restart its config enables the planned slots, not the members."""
    stray = slot(2, member=False, healthy=True, lb="ready")
    member = slot(3, lb="maint")
    steps = slot_steps([slot(1), stray, member], [], 2, DRAIN_TIMEOUT_S)
    assert sorted(kinds(steps)) == [("disable", "2"), ("enable", "3")]
    assert all(s.kind is not StepKind.JOIN for s in steps)


def test_the_cpu_window_needs_a_whole_window() -> None:
    window = CpuWindow()
    for t in range(6):
        window.add(100, 1000.0 + t, 2.0 + 0.5 * t, 10.0)
    assert window.percent(10.0) is None  # 5 s seen of 10
    for t in range(6, 12):
        window.add(100, 1000.0 + t, 2.0 + 0.5 * t, 10.0)
    assert window.percent(10.0) == 50.0


def test_the_cpu_window_starts_again_for_another_process() -> None:
    window = CpuWindow()
    for t in range(12):
        window.add(100, 1000.0 + t, 0.9 * t, 10.0)
    window.add(200, 1012.0, 0.1, 10.0)  # restarted: another process group
    assert window.percent(10.0) is None
    window.add(None, 1013.0, None, 10.0)  # not running
    assert window.percent(10.0) is None and not window.samples
