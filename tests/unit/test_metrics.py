"""The monitor's /metrics text, read back with prometheus_client's own parser."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from geoha.ops.metrics import MetricsView, exposition
from geoha.ops.monitor_store import RegionSample


def sample(region: str, role: str, **values: object) -> RegionSample:
    fields: dict[str, object] = {
        "at": 1000.0,
        "region": region,
        "entry_ok": True,
        "entry_ms": 4.5,
        "api_ok": True,
        "api_ms": 2.0,
        "dns_healthy": True,
        "db_node": f"{region}-db",
        "db_role": role,
        "replication_state": "primary" if role == "primary" else "streaming",
        "write_lag_bytes": 0,
        "replay_lag_bytes": 0,
        "write_lag_ms": 0.0,
        "replay_lag_ms": 0.0,
    }
    fields.update(values)
    return RegionSample(**fields)  # type: ignore[arg-type]


def parse(view: MetricsView) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = exposition(view)
    assert content_type.startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


VIEW = MetricsView(
    samples={
        "delhi": sample("delhi", "primary"),
        "chennai": sample(
            "chennai",
            "replica",
            entry_ok=False,
            entry_ms=800.0,
            replay_lag_bytes=4096,
            replay_lag_ms=12.5,
            write_lag_ms=1.5,
        ),
    },
    dns_healthy={"delhi": True, "chennai": False},
    weights={"delhi": 50, "chennai": 50},
    answers={"delhi": 120, "chennai": 80},
    shares={"delhi": 0.6, "chennai": None},
    primary="delhi-db",
    incidents_open=1,
    incidents_total=4,
    rounds=99,
    autoscale=(
        {
            "region": "delhi",
            "tier": "api",
            "current": 2,
            "desired": 3,
            "min": 1,
            "max": 5,
            "last_decision": "api/delhi: 2 -> 3, CPU 88 % > 70 % over 10s",
            "cpu_percent": 88.0,
            "in_flight": 7,
            "instances": ["delhi-api-1", "delhi-api-2", "delhi-api-3"],
            "draining": [],
            "decisions": [{"t": 1000.0, "sentence": "api/delhi: 2 -> 3, CPU 88 % > 70 % over 10s"}],
            "changes": 4,
        },
    ),
)


def test_every_metric_reads_back_with_its_labels_and_value() -> None:
    m = parse(VIEW)
    assert m[("geoha_region_up", (("region", "delhi"),))] == 1.0
    assert m[("geoha_region_up", (("region", "chennai"),))] == 0.0
    assert m[("geoha_check_up", (("check", "entry"), ("region", "chennai")))] == 0.0
    assert m[("geoha_check_latency_seconds", (("check", "entry"), ("region", "chennai")))] == 0.8
    assert m[("geoha_dns_answers_total", (("region", "delhi"),))] == 120
    assert m[("geoha_dns_weight", (("region", "chennai"),))] == 50
    assert m[("geoha_dns_share", (("region", "delhi"),))] == 0.6
    assert ("geoha_dns_share", (("region", "chennai"),)) not in m  # no answers: no value
    assert m[("geoha_database_primary", (("node", "delhi-db"), ("region", "delhi")))] == 1.0
    assert m[("geoha_database_primary", (("node", "chennai-db"), ("region", "chennai")))] == 0.0
    replica = (("node", "chennai-db"), ("region", "chennai"))
    assert m[("geoha_replication_lag_bytes", (("kind", "replay"), *replica))] == 4096
    assert m[("geoha_replication_lag_seconds", (("kind", "replay"), *replica))] == 0.0125
    assert m[("geoha_replication_lag_seconds", (("kind", "write"), *replica))] == 0.0015
    assert m[("geoha_incidents_open", ())] == 1
    assert m[("geoha_incidents_total", ())] == 4
    assert m[("geoha_monitor_rounds_total", ())] == 99
    api = (("region", "delhi"), ("tier", "api"))
    assert m[("geoha_autoscale_instances", (("kind", "serving"), *api))] == 2
    assert m[("geoha_autoscale_instances", (("kind", "desired"), *api))] == 3
    assert m[("geoha_autoscale_instances", (("kind", "max"), *api))] == 5
    assert m[("geoha_autoscale_cpu_percent", api)] == 88.0
    assert m[("geoha_autoscale_requests_in_flight", api)] == 7
    assert m[("geoha_autoscale_changes_total", api)] == 4


def test_unknown_values_are_left_out_not_reported_as_zero() -> None:
    unknown = sample(
        "chennai",
        "replica",
        entry_ok=None,
        entry_ms=None,
        db_role=None,
        replay_lag_bytes=None,
        replay_lag_ms=None,
    )
    view = replace(VIEW, samples={"chennai": unknown})
    names = {name for name, _ in parse(view)}
    m = parse(view)
    assert ("geoha_check_up", (("check", "entry"), ("region", "chennai"))) not in m
    assert (
        "geoha_replication_lag_bytes",
        (("kind", "replay"), ("node", "chennai-db"), ("region", "chennai")),
    ) not in m
    assert "geoha_check_latency_seconds" in names  # the api check still has its latency
