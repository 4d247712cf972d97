"""The controller's decisions over tables of snapshots: plain data, no processes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from geoha.health import DbRole, Health
from geoha.plan import NodeRole
from geoha.runtime.reconcile import (
    Action,
    ApplySchema,
    BeginBringUp,
    Desired,
    FinishShutdown,
    Goal,
    KillNode,
    MarkFailed,
    MarkReady,
    NodeView,
    Phase,
    Policy,
    ProcState,
    RecordPrimary,
    RenderConfigs,
    ResetRestarts,
    RestartNode,
    Snapshot,
    Stage,
    StartNode,
    StopNode,
    Tiers,
    decide,
)

ROLES = {
    "delhi-etcd": NodeRole.ETCD,
    "chennai-etcd": NodeRole.ETCD,
    "mumbai-etcd": NodeRole.ETCD,
    "delhi-db": NodeRole.DATABASE,
    "chennai-db": NodeRole.DATABASE,
    "delhi-api-1": NodeRole.API,
    "delhi-api-2": NodeRole.API,
    "delhi-be": NodeRole.BACKEND_LB,
    "delhi-web-1": NodeRole.WEB,
    "delhi-fe": NodeRole.FRONTEND_LB,
}
STANDBY = {"delhi-api-2"}
POLICY = Policy(preferred_primary="delhi-db")
NOW = 1000.0
HEALTHY = Health(True, "serving")
PRIMARY = Health(True, "primary", DbRole.PRIMARY)
REPLICA = Health(True, "replica, streaming", DbRole.REPLICA)


def node(name: str, state: str = "absent", **changes: object) -> NodeView:
    """A node: "absent", "starting" (running, not healthy yet), "healthy", "exited"."""
    proc = {
        "absent": ProcState.ABSENT,
        "starting": ProcState.RUNNING,
        "healthy": ProcState.RUNNING,
        "exited": ProcState.EXITED,
    }[state]
    health = Health(False, "not running")
    if state == "healthy":
        health = {"delhi-db": PRIMARY, "chennai-db": REPLICA}.get(name, HEALTHY)
    view = NodeView(
        name=name,
        role=ROLES[name],
        standby=name in STANDBY,
        proc=proc,
        health=health,
        healthy_since=NOW - 5 if health.healthy else None,
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def snapshot(states: dict[str, str], **changes: object) -> Snapshot:
    """Every node absent unless named; a bring-up of generation 1 under way, configs rendered."""
    nodes = tuple(
        n if isinstance(n, NodeView) else node(name, n)
        for name, n in ((name, states.get(name, "absent")) for name in ROLES)
    )
    snap = Snapshot(
        now=NOW,
        nodes=nodes,
        phase=Phase.STARTING,
        bring_up_generation=1,
        bring_up_started_at=NOW - 30,
        rendered_generation=1,
        last_primary="delhi-db",
    )
    return replace(snap, **changes)  # type: ignore[arg-type]


def with_nodes(snap: Snapshot, *views: NodeView) -> Snapshot:
    by_name = {v.name: v for v in views}
    return replace(snap, nodes=tuple(by_name.get(n.name, n) for n in snap.nodes))


def started(actions: tuple[Action, ...]) -> list[str]:
    return [a.node for a in actions if isinstance(a, StartNode)]


ALL_HEALTHY = dict.fromkeys(set(ROLES) - STANDBY, "healthy")
DATA_HEALTHY = {n: "healthy" for n in ROLES if ROLES[n] in (NodeRole.ETCD, NodeRole.DATABASE)}


# -- bring-up order ---------------------------------------------------------------------
def test_an_up_begins_a_bring_up_then_renders() -> None:
    fresh = snapshot({}, bring_up_generation=0, rendered_generation=0)
    decision = decide(fresh, Desired(), POLICY)
    assert decision.actions == (BeginBringUp(1),)
    assert decision.phase is Phase.STARTING
    begun = replace(fresh, bring_up_generation=1)
    decision = decide(begun, Desired(), POLICY)
    assert decision.actions == (RenderConfigs(1),)
    assert decision.stage is Stage.RENDER
    rendering = replace(begun, busy=frozenset({"render"}))
    assert decide(rendering, Desired(), POLICY).actions == ()


@pytest.mark.parametrize(
    ("states", "expected", "stage"),
    [
        ({}, ["delhi-etcd", "chennai-etcd", "mumbai-etcd"], Stage.ETCD),
        ({"delhi-etcd": "healthy", "chennai-etcd": "starting"}, ["mumbai-etcd"], Stage.ETCD),
        (
            {"delhi-etcd": "healthy", "chennai-etcd": "healthy", "mumbai-etcd": "starting"},
            [],
            Stage.ETCD,
        ),
        # etcd healthy: the preferred primary alone first
        ({n: "healthy" for n in ROLES if ROLES[n] is NodeRole.ETCD}, ["delhi-db"], Stage.DATABASE),
        # the first database is not healthy yet: nothing more
        (
            {**{n: "healthy" for n in ROLES if ROLES[n] is NodeRole.ETCD}, "delhi-db": "starting"},
            [],
            Stage.DATABASE,
        ),
        # the first is healthy: the others follow
        (
            {**{n: "healthy" for n in ROLES if ROLES[n] is NodeRole.ETCD}, "delhi-db": "healthy"},
            ["chennai-db"],
            Stage.DATABASE,
        ),
    ],
)
def test_bring_up_starts_stage_after_stage(
    states: dict[str, str], expected: list[str], stage: Stage
) -> None:
    decision = decide(snapshot(states), Desired(), POLICY)
    assert started(decision.actions) == expected
    assert decision.stage is stage
    assert decision.phase is None


def test_an_existing_cluster_starts_its_last_primary_first() -> None:
    etcd = {n: "healthy" for n in ROLES if ROLES[n] is NodeRole.ETCD}
    snap = snapshot(etcd, initialized=True, last_primary="chennai-db")
    decision = decide(snap, Desired(), POLICY)
    assert started(decision.actions) == ["chennai-db"]
    assert "last primary" in next(a.why for a in decision.actions if isinstance(a, StartNode))
    # a new cluster bootstraps on the preferred primary whatever was recorded
    fresh = snapshot(etcd, initialized=False, last_primary="chennai-db")
    assert started(decide(fresh, Desired(), POLICY).actions) == ["delhi-db"]


def test_schema_is_applied_on_the_primary_before_the_app_tiers() -> None:
    decision = decide(snapshot(DATA_HEALTHY), Desired(), POLICY)
    assert decision.actions == (ApplySchema("delhi-db", 1),)
    assert decision.stage is Stage.SCHEMA
    applying = snapshot(DATA_HEALTHY, busy=frozenset({"schema"}))
    assert decide(applying, Desired(), POLICY).actions == ()


def test_app_tiers_in_order_without_standby_slots() -> None:
    snap = snapshot(DATA_HEALTHY, schema_generation=1)
    assert started(decide(snap, Desired(), POLICY).actions) == ["delhi-api-1"]
    snap = snapshot({**DATA_HEALTHY, "delhi-api-1": "healthy"}, schema_generation=1)
    assert started(decide(snap, Desired(), POLICY).actions) == ["delhi-be"]
    snap = snapshot(
        {**DATA_HEALTHY, "delhi-api-1": "healthy", "delhi-be": "healthy"}, schema_generation=1
    )
    assert started(decide(snap, Desired(), POLICY).actions) == ["delhi-web-1"]
    snap = snapshot({**ALL_HEALTHY, "delhi-fe": "absent"}, schema_generation=1)
    assert started(decide(snap, Desired(), POLICY).actions) == ["delhi-fe"]


def test_ready_once_every_wanted_node_is_healthy() -> None:
    decision = decide(snapshot(ALL_HEALTHY, schema_generation=1), Desired(), POLICY)
    assert decision.actions == (MarkReady(30.0),)
    assert decision.phase is Phase.READY


def test_data_tier_alone_is_ready_without_the_traffic_tier() -> None:
    desired = Desired(tiers=Tiers.DATA)
    decision = decide(snapshot(DATA_HEALTHY, schema_generation=1), desired, POLICY)
    assert decision.actions == (MarkReady(30.0),)


def test_app_tier_stops_at_the_backend_lb() -> None:
    desired = Desired(tiers=Tiers.APP)
    states = {**DATA_HEALTHY, "delhi-api-1": "healthy", "delhi-be": "healthy"}
    decision = decide(snapshot(states, schema_generation=1), desired, POLICY)
    assert decision.actions == (MarkReady(30.0),)


def test_nodes_outside_the_tiers_are_stopped() -> None:
    desired = Desired(tiers=Tiers.DATA)
    decision = decide(snapshot(ALL_HEALTHY, schema_generation=1), desired, POLICY)
    stopped = {a.node for a in decision.actions if isinstance(a, StopNode)}
    assert stopped == {"delhi-api-1", "delhi-be", "delhi-web-1", "delhi-fe"}


# -- failures during a bring-up ---------------------------------------------------------
def test_a_stage_that_stays_unhealthy_fails_the_bring_up() -> None:
    states = {"delhi-etcd": "healthy", "chennai-etcd": "healthy", "mumbai-etcd": "starting"}
    snap = snapshot(states, stage=Stage.ETCD, stage_since=NOW - 61)
    decision = decide(snap, Desired(), POLICY)
    failure = decision.actions[-1]
    assert isinstance(failure, MarkFailed)
    assert failure.node == "mumbai-etcd"
    assert "not healthy after 60 s while starting etcd" in failure.reason
    assert decision.phase is Phase.FAILED
    # within its timeout, it waits
    waiting = replace(snap, stage_since=NOW - 59)
    assert decide(waiting, Desired(), POLICY).actions == ()


def test_a_node_that_keeps_exiting_fails_the_bring_up() -> None:
    snap = snapshot({"delhi-etcd": "healthy", "chennai-etcd": "healthy"})
    snap = with_nodes(snap, node("mumbai-etcd", "exited", restarts=3))
    decision = decide(snap, Desired(), POLICY)
    assert decision.actions == (
        MarkFailed("mumbai-etcd keeps exiting while starting etcd", "mumbai-etcd"),
    )


def test_a_failed_render_fails_the_bring_up() -> None:
    snap = snapshot({}, rendered_generation=0, error="haproxy -c refused the rendered config")
    decision = decide(snap, Desired(), POLICY)
    assert decision.actions == (MarkFailed("haproxy -c refused the rendered config", None),)


def test_a_failed_bring_up_starts_nothing_new() -> None:
    snap = snapshot(DATA_HEALTHY, schema_generation=1, phase=Phase.FAILED, error="x")
    assert started(decide(snap, Desired(), POLICY).actions) == []


# -- supervision ------------------------------------------------------------------------------
def test_a_crashed_node_is_restarted_with_doubling_backoff() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    crashed = with_nodes(ready, node("delhi-be", "exited", exit_code=-9))
    assert decide(crashed, Desired(), POLICY).actions == (RestartNode("delhi-be", 1, 2.0, -9),)
    again = with_nodes(ready, node("delhi-be", "exited", restarts=3, next_restart_at=NOW - 1))
    assert decide(again, Desired(), POLICY).actions == (RestartNode("delhi-be", 4, 16.0, None),)
    capped = with_nodes(ready, node("delhi-be", "exited", restarts=7))
    assert decide(capped, Desired(), POLICY).actions == (RestartNode("delhi-be", 8, 30.0, None),)


def test_a_restart_waits_for_its_backoff() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    waiting = with_nodes(ready, node("delhi-be", "exited", restarts=2, next_restart_at=NOW + 3))
    assert decide(waiting, Desired(), POLICY).actions == ()


def test_restart_counts_decay_after_a_healthy_minute() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    long_healthy = with_nodes(
        ready, node("delhi-be", "healthy", restarts=5, healthy_since=NOW - 61)
    )
    assert decide(long_healthy, Desired(), POLICY).actions == (ResetRestarts("delhi-be", 61.0),)
    recent = with_nodes(ready, node("delhi-be", "healthy", restarts=5, healthy_since=NOW - 30))
    assert decide(recent, Desired(), POLICY).actions == ()


def test_a_briefly_down_node_does_not_fail_a_bring_up_once_its_count_decayed() -> None:
    snap = snapshot({"delhi-etcd": "healthy", "chennai-etcd": "healthy"})
    snap = with_nodes(snap, node("mumbai-etcd", "exited", restarts=0))
    assert decide(snap, Desired(), POLICY).actions == (RestartNode("mumbai-etcd", 1, 2.0, None),)


def test_a_busy_node_gets_no_second_action() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    busy = with_nodes(ready, node("delhi-be", "exited", busy=True))
    assert decide(busy, Desired(), POLICY).actions == ()


# -- chaos ------------------------------------------------------------------------------------
def test_chaos_killed_nodes_stay_stopped() -> None:
    desired = Desired(held=frozenset({"delhi-db"}))
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    killed = with_nodes(ready, node("delhi-db", "absent"))
    assert decide(killed, desired, POLICY).actions == ()
    # even during a bring-up, a held node is not started nor waited for
    snap = snapshot({n: "healthy" for n in ROLES if ROLES[n] is NodeRole.ETCD})
    assert started(decide(snap, desired, POLICY).actions) == ["chennai-db"]


def test_a_held_node_that_runs_is_killed() -> None:
    desired = Desired(held=frozenset({"chennai-db"}))
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    assert decide(ready, desired, POLICY).actions == (KillNode("chennai-db"),)
    # a held node that exited is not restarted, only its leftovers killed
    exited = with_nodes(ready, node("chennai-db", "exited"))
    assert decide(exited, desired, POLICY).actions == (KillNode("chennai-db"),)


def test_a_node_started_by_hand_runs_even_in_a_standby_slot() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    desired = Desired(by_hand=frozenset({"delhi-api-2"}))
    assert decide(ready, desired, POLICY).actions == (StartNode("delhi-api-2", "started by hand"),)
    assert decide(ready, Desired(), POLICY).actions == ()


def test_the_autoscaler_s_instances_are_started_and_stopped() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    grown = Desired(instances=frozenset({"delhi-api-1", "delhi-api-2", "delhi-web-1"}))
    assert decide(ready, grown, POLICY).actions == (StartNode("delhi-api-2", "scaled out"),)
    shrunk = Desired(instances=frozenset({"delhi-api-2", "delhi-web-1"}))
    running = with_nodes(ready, node("delhi-api-2", "healthy"))
    assert decide(running, shrunk, POLICY).actions == (StopNode("delhi-api-1", "scaled in"),)
    # a tier not brought up runs none of its instances, whatever the autoscaler kept
    data_only = replace(shrunk, tiers=Tiers.DATA)
    assert (
        StopNode("delhi-api-2", "not wanted with tiers data")
        in decide(running, data_only, POLICY).actions
    )


def test_a_new_primary_is_recorded() -> None:
    ready = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    failed_over = with_nodes(
        ready,
        node("delhi-db", "absent"),
        node("chennai-db", "healthy", health=PRIMARY),
    )
    desired = Desired(held=frozenset({"delhi-db"}))
    assert decide(failed_over, desired, POLICY).actions == (RecordPrimary("chennai-db"),)
    # two primaries at once (a split brain seen in passing) records neither
    split = with_nodes(ready, node("chennai-db", "healthy", health=PRIMARY))
    assert decide(split, Desired(), POLICY).actions == ()


# -- adoption after a controller restart --------------------------------------------------------
def test_a_new_controller_adopts_running_nodes_without_restarting_any() -> None:
    desired = Desired()
    adopted = snapshot(ALL_HEALTHY, phase=Phase.STARTING, bring_up_generation=0)
    adopted = replace(adopted, rendered_generation=0, initialized=True)
    steps: list[tuple[Action, ...]] = []
    snap = adopted
    for _ in range(5):
        decision = decide(snap, desired, POLICY)
        steps.append(decision.actions)
        for action in decision.actions:
            if isinstance(action, BeginBringUp):
                snap = replace(snap, bring_up_generation=action.generation)
            elif isinstance(action, RenderConfigs):
                snap = replace(snap, rendered_generation=action.generation)
            elif isinstance(action, ApplySchema):
                snap = replace(snap, schema_generation=action.generation)
    flat = [a for actions in steps for a in actions]
    assert not [a for a in flat if isinstance(a, StartNode | RestartNode | StopNode | KillNode)]
    assert isinstance(flat[-1], MarkReady)


# -- shutdown -----------------------------------------------------------------------------------
def test_shutdown_stops_front_to_back_replicas_before_the_primary() -> None:
    desired = Desired(goal=Goal.STOP)
    running = {name: "healthy" for name in ROLES if name not in STANDBY}
    order = [
        {"delhi-fe"},
        {"delhi-web-1"},
        {"delhi-be"},
        {"delhi-api-1"},
        {"chennai-db"},
        {"delhi-db"},
        {"delhi-etcd", "chennai-etcd", "mumbai-etcd"},
    ]
    snap = snapshot(running, schema_generation=1, phase=Phase.READY)
    for group in order:
        decision = decide(snap, desired, POLICY)
        stopped = {a.node for a in decision.actions if isinstance(a, StopNode)}
        assert stopped == group
        assert decision.phase is Phase.STOPPING
        snap = with_nodes(snap, *(node(name, "absent") for name in group))
    assert decide(snap, desired, POLICY).actions == (FinishShutdown(),)


def test_shutdown_waits_for_a_node_still_being_started() -> None:
    desired = Desired(goal=Goal.STOP)
    snap = snapshot({}, phase=Phase.STARTING)
    snap = with_nodes(snap, node("delhi-etcd", "absent", busy=True))
    decision = decide(snap, desired, POLICY)
    assert decision.actions == ()
    assert "delhi-etcd" in decision.sentence


def test_shutdown_records_the_primary_before_stopping_it() -> None:
    desired = Desired(goal=Goal.STOP)
    snap = snapshot(DATA_HEALTHY, phase=Phase.READY, last_primary=None)
    decision = decide(snap, desired, POLICY)
    assert RecordPrimary("delhi-db") in decision.actions
    assert StopNode("chennai-db", "shutdown") in decision.actions
    assert StopNode("delhi-db", "shutdown") not in decision.actions


def test_a_purging_shutdown_kills_every_node_at_once() -> None:
    desired = Desired(goal=Goal.STOP, stop_fast=True)
    snap = snapshot(ALL_HEALTHY, schema_generation=1, phase=Phase.READY)
    decision = decide(snap, desired, POLICY)
    killed = {a.node for a in decision.actions if isinstance(a, KillNode)}
    assert killed == set(ALL_HEALTHY)
    assert all(a.why == "down --purge" for a in decision.actions if isinstance(a, KillNode))
    gone = with_nodes(snap, *(node(name, "absent") for name in ALL_HEALTHY))
    assert decide(gone, desired, POLICY).actions == (FinishShutdown(),)
