"""Failover drills: what clients make of answers, and the report built from a fabricated log
(its figures, verdict, Markdown and timeline)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from geoha.ops.drill_clients import (
    NOT_SENT,
    classify_answer,
    classify_error,
    client_count,
    error_detail,
)
from geoha.ops.drill_model import (
    AckedBy,
    Attempt,
    DnsHealthChange,
    DrillLog,
    DrillSettings,
    Marks,
    NodeSample,
    OpKind,
    Resolution,
    Round,
    WriteOutcome,
    WriteRecord,
    chaos_plan,
    parse_fault,
)
from geoha.ops.drill_render import markdown, write_report, write_summary
from geoha.ops.drill_report import build_report, summary, written_names


def api_error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "field": None, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (201, b"{}", "ok"),
        (200, b"{}", "ok"),
        (
            503,
            api_error(
                "database_unavailable",
                "the connection to the primary was lost during the write; its outcome is "
                "unknown (ConnectionDoesNotExistError)",
            ),
            "503 outcome unknown",
        ),
        (
            503,
            api_error("database_unavailable", "no primary accepted the write within 3s"),
            "503 database unavailable",
        ),
        (503, api_error("starting", "the API is not ready"), "503 starting"),
        (503, b"<html><body><h1>503 Service Unavailable</h1></body></html>", "503 no server"),
        (502, b"", "502"),
        (504, b"", "504"),
        (404, api_error("not_found", "no such theme"), "404"),
    ],
)
def test_answers_are_told_apart_by_status_and_the_apis_error_code(
    status: int, body: bytes, outcome: str
) -> None:
    assert classify_answer(status, body) == outcome


def test_what_a_failed_answer_said() -> None:
    assert error_detail(503, api_error("starting", "the API is not ready")) == (
        "503: the API is not ready"
    )
    page = b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available.\n</body></html>"
    assert error_detail(503, page) == "503: 503 Service Unavailable No server is available."


def test_a_write_may_be_sent_again_only_after_failures_that_reached_no_primary() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/")
    assert classify_error(httpx.ConnectError("refused", request=request)) in NOT_SENT
    assert classify_error(httpx.ConnectTimeout("slow", request=request)) in NOT_SENT
    assert classify_error(httpx.ReadTimeout("slow", request=request)) == "timeout"
    lost = httpx.RemoteProtocolError("Server disconnected", request=request)
    assert classify_error(lost) == "connection lost"
    for unknown in ("timeout", "connection lost", "503 outcome unknown", "502", "504"):
        assert unknown not in NOT_SENT


def test_several_clients_per_data_region() -> None:
    assert client_count(20, 2) == 8
    assert client_count(100, 2) == 25
    assert client_count(1000, 2) == 32


def settings() -> DrillSettings:
    regions = {"delhi": "primary", "chennai": "replica", "mumbai": "witness"}
    nodes = {"delhi-db": "delhi", "chennai-db": "chennai", "mumbai-etcd": "mumbai"}
    fault = parse_fault("kill-region:delhi")
    return DrillSettings(
        fault=fault,
        chaos=chaos_plan(fault, regions, nodes),
        rate=10,
        duration_s=30,
        heal_after_s=15,
        warmup_s=5,
        data_regions=("delhi", "chennai"),
        sync=True,
        seed=1,
        tag="t",
    )


def fabricated_log(counts: dict[str, int] | None) -> DrillLog:
    """Delhi dies at 5 s; its client moves to chennai at 12 s; chennai's writes fail from
    5 s until the promotion at 20 s; delhi is healed at 20 s."""
    attempts = []
    for t in range(30):
        delhi_down = 5 <= t < 12
        region = "chennai" if t >= 12 else "delhi"
        outcome = "connect failed" if delhi_down else "ok"
        attempts.append(Attempt(t, t + 0.1, 0, region, OpKind.READ, outcome))
        write_ok = not 5 <= t < 20
        attempts.append(
            Attempt(t, t + 0.2, 1, "chennai", OpKind.WRITE, "ok" if write_ok else "503 x")
        )
    resolutions = [
        Resolution(0, 0, "delhi", "a", 30),
        Resolution(0, 1, "chennai", "b", 30),
        Resolution(12, 0, "chennai", "b", 30),
    ]
    writes = [
        WriteRecord("w1", 1, 1.0, WriteOutcome.ACKED, 1.2, AckedBy.CREATED, 1),
        WriteRecord("w2", 1, 6.0, WriteOutcome.ACKED, 20.2, AckedBy.READ_BACK, 2),
        WriteRecord("w3", 1, 7.0, WriteOutcome.FAILED),
    ]
    rounds = [
        Round(
            t / 10,
            (
                NodeSample("delhi-db", True if t < 50 else None, None),
                NodeSample("chennai-db", t >= 200, None),
            ),
        )
        for t in range(0, 300, 5)
    ]
    return DrillLog(
        attempts=attempts,
        resolutions=resolutions,
        writes=writes,
        rounds=rounds,
        dns_changes=[
            DnsHealthChange(0.5, "delhi", True),
            DnsHealthChange(8.0, "delhi", False),
            DnsHealthChange(27.0, "delhi", True),
        ],
        marks=Marks(
            fault_issued=4.5, fault_at=5.0, fault_returned=5.5, heal_at=20.0, load_end=30.0
        ),
        clients=2,
        primary="chennai-db",
        counts=counts,
    )


def test_the_report_of_a_drill_that_kept_every_promise() -> None:
    report = build_report(settings(), fabricated_log({"w1": 1, "w2": 1}))
    assert report["write_rto_s"] == {"delhi": None, "chennai": 15.2}
    assert report["read_rto_s"] == {"delhi": None, "chennai": 0.0}
    assert report["dns_rto_s"] == 7.0
    assert report["dns"]["detect_s"] == 3.0 and report["dns"]["restored_s"] == 7.0
    assert report["dns"]["client_read_rto_s"] == 7.1
    assert (report["acked_writes"], report["acked_lost"], report["duplicated"]) == (2, 0, 0)
    assert report["writes"]["acked_by_readback"] == 1 and report["writes"]["failed"] == 1
    assert report["split_brain_moments"] == 0
    assert report["errors"] == {"read: connect failed": 7, "write: 503 x": 15}
    assert report["verdict"] == {"ok": True, "broken": [], "warnings": []}
    assert report["timeline"]["requests"]["chennai"]["write failed"][5:21] == [1] * 15 + [0]
    assert [c["db"] for c in report["role_changes"] if c["node"] == "delhi-db"] == [
        "primary",
        "down",
    ]
    assert "**PASSED**" in markdown(report)


def test_a_deliberately_lost_write_is_flagged() -> None:
    report = build_report(settings(), fabricated_log({"w1": 1}))
    assert report["acked_lost"] == 1 and report["writes"]["lost"] == ["w2"]
    assert not report["verdict"]["ok"]
    assert report["verdict"]["broken"][0].startswith("RPO: 1 acknowledged write(s) missing")
    assert "**FAILED**: RPO" in markdown(report)


def test_no_verification_is_no_pass() -> None:
    log = fabricated_log(None)
    report = build_report(settings(), log)
    assert not report["verdict"]["ok"]
    assert report["writes"]["verified"] is False


def test_the_files_of_a_report_and_of_a_summary(tmp_path: Path) -> None:
    report = build_report(settings(), fabricated_log({"w1": 1, "w2": 1, "w3": 1}))
    assert report["verdict"]["warnings"] == [
        "1 write(s) the clients were told had failed are stored all the same"
    ]
    write_report(tmp_path / "run-1", report)
    saved = json.loads((tmp_path / "run-1" / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert written_names(saved) == [("w1", "acked"), ("w2", "acked"), ("w3", "failed")]
    assert (tmp_path / "run-1" / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    both = summary([report, build_report(settings(), fabricated_log({"w1": 1}))])
    assert both["failed"] == [2]
    assert both["figures"]["acked_lost"] == {"min": 0, "median": 0.5, "max": 1, "missing": 0}
    write_summary(tmp_path, both)
    assert (
        "| write_rto_s.chennai | 15.2 | 15.2 | 15.2 | 0 |" in (tmp_path / "summary.md").read_text()
    )
