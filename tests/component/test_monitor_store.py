"""The monitor's SQLite history on a real file: samples, incidents, bounds, privacy."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from geoha.ops.incidents import Incident
from geoha.ops.monitor_store import MonitorStore, RegionSample

pytestmark = pytest.mark.component


def sample(at: float, region: str = "delhi", ok: bool | None = True) -> RegionSample:
    return RegionSample(
        at=at,
        region=region,
        entry_ok=ok,
        entry_ms=3.5,
        api_ok=None,
        api_ms=None,
        dns_healthy=bool(ok),
        db_node=f"{region}-db",
        db_role="replica",
        replication_state="streaming",
        write_lag_bytes=0,
        replay_lag_bytes=120,
        write_lag_ms=0.4,
        replay_lag_ms=1.2,
    )


def test_samples_round_trip_with_their_types_and_order(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "monitor.sqlite")
    try:
        rows = [sample(10.0, "chennai"), sample(10.0, "delhi", ok=False), sample(11.0, ok=None)]
        store.add_samples(rows)
        assert store.samples_since(0) == [rows[0], rows[1], rows[2]]
        assert store.samples_since(10.5) == [rows[2]]
        assert store.samples_since(10.0)[1].entry_ok is False
    finally:
        store.close()
    assert stat.S_IMODE((tmp_path / "monitor.sqlite").stat().st_mode) == 0o600


def test_incidents_are_kept_open_first_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "monitor.sqlite"
    store = MonitorStore(path)
    old = store.save_incident(Incident("entry delhi", "delhi", "refused", 100.0))
    assert old.id is not None
    store.save_incident(Incident("api delhi", "delhi", "answered 503", 150.0))
    ended = store.save_incident(replace(old, ended_at=110.0, resolution="answered 200"))
    assert ended.id == old.id
    store.close()

    store = MonitorStore(path)  # a new controller finds them
    try:
        listed = store.incidents(10)
        assert [(i.subject, i.open) for i in listed] == [
            ("api delhi", True),
            ("entry delhi", False),
        ]
        assert listed[1].ended_at == 110.0 and listed[1].resolution == "answered 200"
        assert [i.subject for i in store.incidents(10, open_only=True)] == ["api delhi"]
        assert store.incidents(1)[0].subject == "api delhi"
        assert store.count_incidents() == 2
    finally:
        store.close()


def test_prune_drops_old_rows_then_the_oldest_beyond_the_count(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "monitor.sqlite")
    try:
        store.add_samples(sample(float(t)) for t in range(100))
        store.save_incident(Incident("entry delhi", "delhi", "refused", 1.0, 5.0, "ok"))
        store.save_incident(Incident("entry chennai", "chennai", "refused", 2.0))  # still open
        dropped = store.prune(now=100.0, max_age_s=80.0, max_rows=10)
        assert dropped == 20 + 1 + 70  # 20 too old, the old ended incident, 70 beyond 10 rows
        assert [s.at for s in store.samples_since(0)] == [float(t) for t in range(90, 100)]
        assert [i.subject for i in store.incidents(10)] == ["entry chennai"]  # open stays
    finally:
        store.close()
