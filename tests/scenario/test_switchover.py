"""Planned switchovers under an API write load: every API instance holds writes while
Patroni switches over (app/api/gate.py), so no request fails and nothing is lost."""

from __future__ import annotations

import time

import pytest

from geoha.ops.writer import ApiWriterLoop, count_present
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def test_switchovers_under_api_writes_fail_no_request(deployment: Deployment) -> None:
    dep = deployment
    writers = [
        ApiWriterLoop(dep.entry_url(r), interval_s=0.02, max_s=300).start()
        for r in ("delhi", "chennai")
    ]
    try:
        for primary, to in (("delhi-db", "chennai"), ("chennai-db", "delhi")):
            standby = dep.plan.database_node(to).name
            dep.wait_for(f"{standby} a sync replica", lambda s=standby: dep.can_take_over(s), 120)
            acked = [len(w.acked) for w in writers]
            dep.wait_for(
                "writes flowing",
                lambda a=acked: all(
                    len(w.acked) >= n + 20 for w, n in zip(writers, a, strict=True)
                ),
            )
            out = dep.geoha("switchover", "--to", to).stdout
            assert f"{standby} is primary, {primary} streams from it" in out
            assert "writes held" in out and "not held" not in out
            assert dep.primary() == standby
            ended = time.monotonic()
            for w in writers:
                dep.wait_for(
                    "a write after the switchover", lambda w=w, t=ended: w.first_ack_after(t)
                )
    finally:
        for w in writers:
            w.stop()
    for w in writers:
        assert [f.message for f in w.failures] == []
        assert len(w.acked) > 100
        assert count_present(dep.node_dsn("delhi-db"), w.acked) == len(w.acked)
