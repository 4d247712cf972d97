"""The monitor's Prometheus metrics, from one snapshot of what it knows.

`exposition(view)` gives the text format through prometheus_client (a registry
of its own, one custom collector), so the names, escaping and types are the
library's. Every metric is prefixed `geoha_`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from geoha.ops.autoscale import GroupStatus
from geoha.ops.monitor_store import RegionSample


@dataclass(frozen=True)
class MetricsView:
    """What the metrics are made of (the monitor's latest round and counters)."""

    samples: Mapping[str, RegionSample]
    """The latest sample of each data region."""
    dns_healthy: Mapping[str, bool]
    weights: Mapping[str, int]
    answers: Mapping[str, int]
    """Weighted DNS answers per region since the controller started."""
    shares: Mapping[str, float | None]
    """Each region's share of the answers over the last minute (None: no answers)."""
    primary: str | None
    incidents_open: int
    incidents_total: int
    rounds: int
    autoscale: Sequence[GroupStatus] = ()
    """Each web and API group as the autoscaler runs it."""


class _Collector(Collector):
    def __init__(self, view: MetricsView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        view = self.view
        region_up = GaugeMetricFamily(
            "geoha_region_up",
            "The region passes its DNS health check (1) or not (0).",
            labels=["region"],
        )
        check_up = GaugeMetricFamily(
            "geoha_check_up",
            "The latest check passed (1) or failed (0); check = entry or api.",
            labels=["region", "check"],
        )
        latency = GaugeMetricFamily(
            "geoha_check_latency_seconds",
            "How long the latest check took.",
            labels=["region", "check"],
        )
        for region, s in view.samples.items():
            region_up.add_metric([region], float(view.dns_healthy.get(region, False)))
            for check, ok, ms in (("entry", s.entry_ok, s.entry_ms), ("api", s.api_ok, s.api_ms)):
                if ok is not None:
                    check_up.add_metric([region, check], float(ok))
                if ms is not None:
                    latency.add_metric([region, check], round(ms / 1000, 6))
        yield from (region_up, check_up, latency)
        yield from self._dns()
        yield from self._database()
        open_ = GaugeMetricFamily("geoha_incidents_open", "Incidents open now.")
        open_.add_metric([], view.incidents_open)
        total = CounterMetricFamily("geoha_incidents", "Incidents opened, ever (kept history).")
        total.add_metric([], view.incidents_total)
        rounds = CounterMetricFamily("geoha_monitor_rounds", "Monitor rounds since it started.")
        rounds.add_metric([], view.rounds)
        yield from (open_, total, rounds)
        yield from self._autoscale()

    def _autoscale(self) -> Iterator[Metric]:
        labels = ["region", "tier"]
        instances = GaugeMetricFamily(
            "geoha_autoscale_instances",
            "Instances of a web or API group: serving (healthy and enabled in the LB), "
            "desired, min and max.",
            labels=[*labels, "kind"],
        )
        cpu = GaugeMetricFamily(
            "geoha_autoscale_cpu_percent",
            "Average CPU of the group's healthy instances over the autoscaler's window, "
            "in percent of one core.",
            labels=labels,
        )
        in_flight = GaugeMetricFamily(
            "geoha_autoscale_requests_in_flight",
            "Requests the group's instances are serving or have queued, by the LB's count.",
            labels=labels,
        )
        changes = CounterMetricFamily(
            "geoha_autoscale_changes",
            "Changes of the group's size since the controller started.",
            labels=labels,
        )
        for g in self.view.autoscale:
            group = [g["region"], g["tier"]]
            counts = {"serving": g["current"], "desired": g["desired"], "min": g["min"]}
            for kind, value in {**counts, "max": g["max"]}.items():
                instances.add_metric([*group, kind], value)
            if g["cpu_percent"] is not None:
                cpu.add_metric(group, g["cpu_percent"])
            in_flight.add_metric(group, g["in_flight"])
            changes.add_metric(group, g["changes"])
        yield from (instances, cpu, in_flight, changes)

    def _dns(self) -> Iterator[Metric]:
        view = self.view
        answers = CounterMetricFamily(
            "geoha_dns_answers", "Weighted DNS answers naming the region.", labels=["region"]
        )
        weight = GaugeMetricFamily(
            "geoha_dns_weight", "The region's record weight.", labels=["region"]
        )
        share = GaugeMetricFamily(
            "geoha_dns_share",
            "The region's share of weighted answers over the last minute.",
            labels=["region"],
        )
        for region, w in view.weights.items():
            weight.add_metric([region], w)
            answers.add_metric([region], view.answers.get(region, 0))
            value = view.shares.get(region)
            if value is not None:
                share.add_metric([region], value)
        yield from (answers, weight, share)

    def _database(self) -> Iterator[Metric]:
        view = self.view
        primary = GaugeMetricFamily(
            "geoha_database_primary",
            "The node runs as the primary (1) or not (0).",
            labels=["node", "region"],
        )
        lag_bytes = GaugeMetricFamily(
            "geoha_replication_lag_bytes",
            "WAL the primary wrote that the replica has not written or replayed yet.",
            labels=["node", "region", "kind"],
        )
        lag_seconds = GaugeMetricFamily(
            "geoha_replication_lag_seconds",
            "pg_stat_replication's write_lag and replay_lag.",
            labels=["node", "region", "kind"],
        )
        for region, s in view.samples.items():
            if s.db_node is None:
                continue
            primary.add_metric([s.db_node, region], float(s.db_node == view.primary))
            labels = [s.db_node, region]
            for kind, b, ms in (
                ("write", s.write_lag_bytes, s.write_lag_ms),
                ("replay", s.replay_lag_bytes, s.replay_lag_ms),
            ):
                if b is not None:
                    lag_bytes.add_metric([*labels, kind], b)
                if ms is not None:
                    lag_seconds.add_metric([*labels, kind], round(ms / 1000, 6))
        yield from (primary, lag_bytes, lag_seconds)


def exposition(view: MetricsView) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(view))
    return generate_latest(registry), CONTENT_TYPE_LATEST
