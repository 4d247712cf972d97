"""Failover drills: `--fault` parsing, the chaos commands a fault maps to, when it struck."""

from __future__ import annotations

import pytest

from geoha.errors import BadInput
from geoha.ops.drill_model import (
    ChaosPlan,
    ControllerEvent,
    Fault,
    FaultKind,
    chaos_plan,
    fault_struck_at,
    parse_fault,
    warmup_s,
)

REGIONS = {"delhi": "primary", "chennai": "replica", "mumbai": "witness"}
NODES = {
    "delhi-db": "delhi",
    "delhi-fe": "delhi",
    "chennai-db": "chennai",
    "mumbai-etcd": "mumbai",
}


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("kill-region:delhi", Fault(FaultKind.KILL_REGION, "delhi")),
        ("partition:delhi", Fault(FaultKind.PARTITION, "delhi")),
        ("kill-node:chennai-db", Fault(FaultKind.KILL_NODE, "chennai-db")),
        ("kill-witness", Fault(FaultKind.KILL_WITNESS)),
    ],
)
def test_each_form_parses_and_prints_back(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault
    assert str(fault) == text


@pytest.mark.parametrize(
    "text", ["", "kill-region", "kill-region:", "kill-zone:delhi", "delhi", "heal:delhi"]
)
def test_a_bad_fault_names_the_argument_and_every_form(text: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_fault(text)
    assert str(caught.value) == (
        "--fault: one of kill-region:REGION, partition:REGION, kill-node:NODE, kill-witness "
        f"(got {text!r})"
    )


def test_kill_witness_takes_no_target() -> None:
    with pytest.raises(BadInput, match="kill-witness takes no target"):
        parse_fault("kill-witness:mumbai")


def test_kill_region_of_a_data_region_loses_its_entry() -> None:
    plan = chaos_plan(parse_fault("kill-region:delhi"), REGIONS, NODES)
    assert plan == ChaosPlan(
        ("kill-region", "delhi"), ("heal", "delhi"), "delhi", ("delhi-db", "delhi-fe")
    )


def test_partition_kills_nothing_and_the_witness_is_no_lost_region() -> None:
    assert chaos_plan(parse_fault("partition:delhi"), REGIONS, NODES) == ChaosPlan(
        ("partition", "delhi"), ("heal", "delhi"), "delhi", ()
    )
    assert chaos_plan(parse_fault("partition:mumbai"), REGIONS, NODES).lost_region is None


def test_kill_witness_kills_the_witness_region() -> None:
    assert chaos_plan(parse_fault("kill-witness"), REGIONS, NODES) == ChaosPlan(
        ("kill-region", "mumbai"), ("heal", "mumbai"), None, ("mumbai-etcd",)
    )
    with pytest.raises(BadInput, match="needs a witness region"):
        chaos_plan(parse_fault("kill-witness"), {"delhi": "primary"}, {"delhi-db": "delhi"})


def test_kill_node_heals_its_region() -> None:
    assert chaos_plan(parse_fault("kill-node:chennai-db"), REGIONS, NODES) == ChaosPlan(
        ("kill-node", "chennai-db"), ("heal", "chennai"), "chennai", ("chennai-db",)
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kill-region:pune",
            "--fault: kill-region:REGION with REGION one of delhi, chennai, mumbai (got 'pune')",
        ),
        (
            "partition:pune",
            "--fault: partition:REGION with REGION one of delhi, chennai, mumbai (got 'pune')",
        ),
        (
            "kill-node:delhi-xx",
            "--fault: kill-node:NODE with NODE one of delhi-db, delhi-fe, "
            "chennai-db, mumbai-etcd (got 'delhi-xx')",
        ),
    ],
)
def test_unknown_targets_are_named(text: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        chaos_plan(parse_fault(text), REGIONS, NODES)
    assert str(caught.value) == message


def test_a_kill_struck_at_the_first_kill_of_its_nodes_after_it_was_issued() -> None:
    plan = chaos_plan(parse_fault("kill-region:delhi"), REGIONS, NODES)
    events = [
        ControllerEvent(5.0, "node_killed", "delhi-db"),  # an older drill's
        ControllerEvent(10.4, "fault_injected", None, "delhi"),
        ControllerEvent(10.9, "node_killed", "delhi-fe"),
        ControllerEvent(10.7, "node_killed", "delhi-db"),
        ControllerEvent(10.6, "node_killed", "chennai-db"),
    ]
    assert fault_struck_at(events, plan, issued=10.0, returned=11.5) == 10.7
    assert fault_struck_at([], plan, issued=10.0, returned=11.5) == 11.5


def test_a_partition_struck_when_its_rules_were_in_place() -> None:
    plan = chaos_plan(parse_fault("partition:delhi"), REGIONS, NODES)
    events = [
        ControllerEvent(10.5, "fault_injected", None, "chennai"),
        ControllerEvent(10.8, "fault_injected", None, "delhi"),
    ]
    assert fault_struck_at(events, plan, issued=10.0, returned=11.0) == 10.8


def test_the_warm_up_is_a_fifth_of_the_run_at_most_five_seconds() -> None:
    assert warmup_s(10) == 2.0
    assert warmup_s(60) == 5.0
