"""Failover drills: RTOs from the event log, DNS recovery, split brain, the write check, the
verdict and the summary of several drills."""

from __future__ import annotations

import pytest

from geoha.ops.drill_analysis import (
    Outage,
    broken_promises,
    check_writes,
    dns_recovery,
    figure_stats,
    outages,
    recovery_s,
    role_changes,
    split_brain,
    summarize,
)
from geoha.ops.drill_model import (
    AckedBy,
    Attempt,
    NodeSample,
    OpKind,
    Resolution,
    Round,
    WriteOutcome,
    WriteRecord,
)


def log(*outcomes: tuple[float, bool], op: OpKind = OpKind.WRITE) -> list[Attempt]:
    """Attempts of one client in region chennai, answered at the given times."""
    return [
        Attempt(t - 0.01, t, 0, "chennai", op, "ok" if ok else "503 database unavailable")
        for t, ok in outcomes
    ]


def test_no_failure_after_the_fault_is_an_rto_of_zero() -> None:
    attempts = log((1, True), (4, False), (6, True), (12, True))
    assert recovery_s(attempts, fault_at=5, heal_at=30) == 0.0


def test_the_rto_ends_at_the_first_success_no_failure_follows_within_stable_s() -> None:
    attempts = log((4, True), (6, False), (10, False), (11, True), (12, False), (20, True))
    attempts += log((21, True), (30, True))
    assert outages(attempts, since=5) == [Outage(6, 20, 3)]
    assert recovery_s(attempts, fault_at=5, heal_at=40) == 15.0


def test_a_failure_long_after_recovery_is_an_outage_of_its_own() -> None:
    attempts = log((6, False), (8, True), (20, False), (21, True))
    assert outages(attempts, since=5, stable_s=5) == [Outage(6, 8, 1), Outage(20, 21, 1)]
    assert recovery_s(attempts, fault_at=5, heal_at=40) == 3.0


def test_an_outage_that_starts_after_the_heal_is_not_the_faults() -> None:
    attempts = log((6, True), (35, False), (36, True))
    assert recovery_s(attempts, fault_at=5, heal_at=30) == 0.0


def test_an_outage_still_on_when_the_log_ends_has_no_rto() -> None:
    assert recovery_s(log((6, False), (9, False)), fault_at=5, heal_at=30) is None


def test_a_region_without_requests_after_the_fault_has_no_rto() -> None:
    assert recovery_s(log((1, True)), fault_at=5, heal_at=30) is None


def answer(t: float, client: int, region: str) -> Resolution:
    return Resolution(t, client, region, f"entry-{region}", 30)


def test_dns_rto_is_when_the_last_client_of_the_lost_region_was_sent_elsewhere() -> None:
    resolutions = [
        answer(0, 0, "delhi"),
        answer(0, 1, "delhi"),
        answer(0, 2, "chennai"),
        answer(7, 0, "delhi"),  # asked before the DNS noticed: still delhi
        answer(12, 0, "chennai"),
        answer(25, 1, "chennai"),
        Resolution(9, 1, None, None, None, "TimeoutError"),
    ]
    recovery = dns_recovery(resolutions, "delhi", fault_at=5)
    assert recovery.clients == 2
    assert sorted(recovery.moved) == [7, 20]
    assert recovery.rto_s == 20


def test_dns_rto_is_unknown_while_a_client_of_the_lost_region_stays() -> None:
    recovery = dns_recovery([answer(0, 0, "delhi"), answer(0, 1, "delhi")], "delhi", 5)
    assert recovery.clients == 2 and recovery.moved == [] and recovery.rto_s is None
    assert dns_recovery([answer(0, 0, "chennai")], "delhi", 5).rto_s is None


def sample(node: str, writable: bool | None, lsn: int | None = None) -> NodeSample:
    role = None if writable is None else "primary" if writable else "replica"
    return NodeSample(node, writable, role, lsn)


def test_split_brain_spans_consecutive_rounds_with_two_writable_nodes() -> None:
    rounds = [
        Round(1.0, (sample("a", True, 100), sample("b", False, 90))),
        Round(1.1, (sample("a", True, 110), sample("b", True, 95))),
        Round(1.2, (sample("a", True, 120), sample("b", True, 99))),
        Round(1.3, (sample("a", None), sample("b", True, 99))),
        Round(1.4, (sample("a", True, 130), sample("b", True, 99))),
    ]
    spans = split_brain(rounds, acked_at=[1.15, 3.0], interval_s=0.1)
    assert [(s.start, s.end, s.rounds) for s in spans] == [(1.1, 1.2, 2), (1.4, 1.4, 1)]
    assert spans[0].nodes == ("a", "b")
    assert spans[0].wal_advanced == ("a", "b")
    assert spans[0].acked_writes == 1 and spans[0].both_acknowledged
    assert not spans[1].both_acknowledged


def test_no_split_brain_when_one_node_is_writable_at_a_time() -> None:
    rounds = [
        Round(1.0, (sample("a", True), sample("b", False))),
        Round(1.1, (sample("a", None), sample("b", False))),
        Round(1.2, (sample("a", None), sample("b", True))),
    ]
    assert split_brain(rounds, [], 0.1) == []


def test_role_changes_list_the_first_state_and_each_change() -> None:
    rounds = [
        Round(1.0, (sample("a", True), sample("b", False))),
        Round(1.1, (sample("a", True), sample("b", False))),
        Round(1.2, (sample("a", None), sample("b", False))),
        Round(1.3, (sample("a", None), sample("b", True))),
    ]
    assert [(c["t"], c["node"], c["db"]) for c in role_changes(rounds)] == [
        (1.0, "a", "primary"),
        (1.0, "b", "replica"),
        (1.2, "a", "down"),
        (1.3, "b", "primary"),
    ]


def write(name: str, outcome: WriteOutcome, by: AckedBy | None = None) -> WriteRecord:
    acked = outcome is WriteOutcome.ACKED
    return WriteRecord(name, 0, 1.0, outcome, 2.0 if acked else None, by, 7 if acked else None)


WRITES = [
    write("w1", WriteOutcome.ACKED, AckedBy.CREATED),
    write("w2", WriteOutcome.ACKED, AckedBy.READ_BACK),
    write("w3", WriteOutcome.ACKED, AckedBy.CREATED),
    write("w4", WriteOutcome.FAILED),
    write("w5", WriteOutcome.UNKNOWN),
]


def test_every_acknowledged_write_once_passes() -> None:
    check = check_writes(WRITES, {"w1": 1, "w2": 1, "w3": 1})
    assert (check.acked, check.acked_by_readback) == (3, 1)
    assert check.lost == () and check.duplicated == () and check.failed_but_present == ()
    assert broken_promises(check, None, split_moments=0, sync=True, settled_error=None) == []


def test_a_lost_acknowledged_write_breaks_rpo_in_sync_mode_only() -> None:
    check = check_writes(WRITES, {"w2": 1, "w3": 1})
    assert check.lost == ("w1",) and check.lost_read_back == 0
    assert broken_promises(check, None, split_moments=0, sync=True, settled_error=None) == [
        "RPO: 1 acknowledged write(s) missing on the primary "
        "(synchronous replication promises none): w1"
    ]
    assert broken_promises(check, None, split_moments=0, sync=False, settled_error=None) == []


def test_a_write_found_by_reading_back_and_then_gone_is_lost_too() -> None:
    check = check_writes(WRITES, {"w1": 1, "w3": 1})
    assert check.lost == ("w2",) and check.lost_read_back == 1
    assert broken_promises(check, None, split_moments=0, sync=True, settled_error=None) == [
        "RPO: 1 acknowledged write(s) missing on the primary, 1 of them found earlier by "
        "reading back (synchronous replication promises none): w2"
    ]


def test_duplicates_and_writes_stored_though_failed_or_unknown() -> None:
    check = check_writes(WRITES, {"w1": 2, "w2": 1, "w3": 1, "w4": 1, "w5": 1})
    assert check.duplicated == ("w1",)
    assert check.failed_but_present == ("w4",) and check.unknown_present == 1
    assert broken_promises(check, None, split_moments=0, sync=True, settled_error=None) == [
        "1 write(s) stored more than once: w1"
    ]


def test_split_brain_an_unsettled_cluster_and_no_check_are_broken_promises() -> None:
    broken = broken_promises(
        None,
        "OperationalError: refused",
        split_moments=3,
        sync=True,
        settled_error="no primary",
        heal_error="delhi-etcd: not done after 60 s",
    )
    assert broken == [
        "acknowledged writes not verified: OperationalError: refused",
        "split brain: two writable primaries in 3 sample round(s)",
        "the heal failed: delhi-etcd: not done after 60 s",
        "the cluster did not settle after the heal: no primary",
    ]


def test_figure_stats_ignore_missing_values_and_count_them() -> None:
    assert figure_stats([3.0, None, 1.0, 2.0]) == {
        "min": 1.0,
        "median": 2.0,
        "max": 3.0,
        "missing": 1,
    }
    assert figure_stats([None]) == {"min": None, "median": None, "max": None, "missing": 1}
    summary = summarize([{"a": 1.0, "b": None}, {"a": 3.0, "b": 4.0}])
    assert summary["a"]["median"] == pytest.approx(2.0)
    assert summary["b"] == {"min": 4.0, "median": 4.0, "max": 4.0, "missing": 1}
