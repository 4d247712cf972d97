"""`geoha load`: its arguments, its report from a list of attempts, the fixed entry of its
clients. No process, no socket."""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path

import pytest

from geoha.cli import main
from geoha.commands import load as load_command
from geoha.commands.load import LoadClock
from geoha.errors import BadInput
from geoha.ops.drill_clients import BrowserClient, Budget, ClientSettings, Load, Shared, Target
from geoha.ops.drill_model import Attempt, OpKind
from geoha.ops.load_report import (
    UNRESOLVED,
    LoadSettings,
    failures,
    load_report,
    load_settings,
    percentile,
)

DATA_REGIONS = ["delhi", "chennai"]
TARGET = Target(
    name="app.geoha.test",
    dns_host="127.0.0.1",
    dns_port=9,  # never asked: the tests below send nothing
    http_port=8080,
    regions={"127.10.1.1": "delhi", "127.20.1.1": "chennai"},
)


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "duration", "share", "region", "complaint"),
    [
        (0, 10, 0.8, None, "--rate: more than 0 and at most 5000 operations per second (got 0)"),
        (-5, 10, 0.8, None, "--rate: more than 0 and at most 5000 operations per second (got -5)"),
        (5001, 10, 0.8, None, "(got 5001)"),
        (math.nan, 10, 0.8, None, "--rate: more than 0 and at most 5000 operations per second"),
        (10, 0, 0.8, None, "--duration: more than 0 and at most 3600 seconds (got 0)"),
        (10, 3601, 0.8, None, "--duration: more than 0 and at most 3600 seconds (got 3601)"),
        (10, 10, -0.1, None, "--read-share: a fraction from 0 to 1 (got -0.1)"),
        (10, 10, 1.5, None, "--read-share: a fraction from 0 to 1 (got 1.5)"),
        (10, 10, 0.8, "mumbai", "--region: one of the data regions delhi, chennai (got 'mumbai')"),
        (10, 10, 0.8, "Delhi", "--region: one of the data regions delhi, chennai (got 'Delhi')"),
    ],
)
def test_bad_arguments_name_the_option_and_what_was_expected(
    rate: float, duration: float, share: float, region: str | None, complaint: str
) -> None:
    with pytest.raises(BadInput) as raised:
        load_settings(rate, duration, share, region, DATA_REGIONS)
    assert complaint in str(raised.value)
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("share", [0.0, 0.8, 1.0])
def test_good_arguments(share: float) -> None:
    assert load_settings(5000, 3600, share, "chennai", DATA_REGIONS) == LoadSettings(
        5000, 3600, share, "chennai"
    )
    assert load_settings(0.5, 0.1, share, None, DATA_REGIONS).region is None


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--rate", "0", "--duration", "10"], "geoha: --rate: more than 0"),
        (["--rate", "10", "--duration", "4000"], "geoha: --duration: more than 0"),
        (["--rate", "10", "--duration", "10", "--read-share", "2"], "geoha: --read-share: "),
        (["--rate", "10", "--duration", "10", "--region", "mumbai"], "geoha: --region: one of"),
    ],
)
def test_the_command_exits_2_on_bad_arguments(
    argv: list[str],
    complaint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["load", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(complaint)
    assert len(captured.err.splitlines()) == 1
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_the_command_needs_the_deployment_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["load", "--rate", "10", "--duration", "10"]) == 1
    assert capsys.readouterr().err == (
        "geoha: no controller is running: the load needs the deployment up (`geoha up`)\n"
    )


# -- the report --------------------------------------------------------------------------


def attempt(
    sent: float,
    ms: float,
    region: str | None = "delhi",
    op: OpKind = OpKind.READ,
    outcome: str = "ok",
) -> Attempt:
    return Attempt(sent, sent + ms / 1000, 0, region, op, outcome)


SETTINGS = LoadSettings(rate=10, duration_s=10, read_share=0.8, region=None)


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(v) for v in range(1, 101)]
    assert [percentile(ordered, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert [percentile([7.0], p) for p in (0, 50, 99)] == [7.0, 7.0, 7.0]
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_latency_percentiles_of_every_attempt_in_ms() -> None:
    attempts = [attempt(i * 0.1, ms) for i, ms in enumerate(range(100, 0, -1))]
    report = load_report(attempts, SETTINGS, clients=8, ran_s=10)
    assert report["latency_ms"] == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}


def test_counts_by_outcome_op_and_region() -> None:
    attempts = [
        attempt(0.0, 5),
        attempt(0.1, 7, "chennai"),
        attempt(0.2, 9, op=OpKind.WRITE),
        attempt(0.3, 2000, op=OpKind.WRITE, outcome="timeout"),
        attempt(0.4, 11, op=OpKind.READBACK),
        attempt(0.5, 1, "chennai", outcome="503 no server"),
        attempt(0.6, 1, "chennai", outcome="503 no server"),
        attempt(0.7, 0, None, outcome="no DNS answer"),
    ]
    report = load_report(attempts, SETTINGS, clients=8, ran_s=10)
    assert (report["requests"], report["ok"], report["failed"]) == (8, 4, 4)
    assert (report["reads"], report["writes"]) == (6, 2)  # a read-back is a read
    assert report["outcomes"] == {
        "ok": 4,
        "503 no server": 2,
        "no DNS answer": 1,
        "timeout": 1,
    }
    assert failures(report) == "503 no server 2, no DNS answer 1, timeout 1"
    assert list(report["by_region"]) == ["chennai", "delhi", UNRESOLVED]
    delhi = report["by_region"]["delhi"]
    assert (delhi["requests"], delhi["ok"], delhi["reads"], delhi["writes"]) == (4, 3, 2, 2)
    assert delhi["outcomes"] == {"ok": 3, "timeout": 1}
    assert delhi["latency_ms"]["max"] == 2000.0
    assert report["by_region"]["chennai"]["failed"] == 2


def test_the_report_keys_and_the_achieved_rate() -> None:
    # 30 requests in 3 s of load, then 2 deciding a write after it: 10 requests/s.
    attempts = [attempt(i * 0.1, 3) for i in range(30)] + [attempt(3.5, 3), attempt(4.0, 3)]
    settings = LoadSettings(rate=12, duration_s=20, read_share=0.5, region="delhi")
    report = load_report(attempts, settings, clients=8, ran_s=3.0, interrupted=True, capped=False)
    assert set(report) == {
        "region",
        "rate",
        "duration_s",
        "read_share",
        "clients",
        "ran_s",
        "interrupted",
        "capped",
        "requests",
        "ok",
        "failed",
        "outcomes",
        "reads",
        "writes",
        "latency_ms",
        "achieved_rate",
        "by_region",
    }
    assert report["achieved_rate"] == 10.0
    assert report["requests"] == 32
    assert (report["region"], report["rate"], report["read_share"]) == ("delhi", 12, 0.5)
    assert report["interrupted"] is True


def test_an_empty_load_reports_no_latency() -> None:
    report = load_report([], SETTINGS, clients=8, ran_s=0.0, interrupted=True)
    assert report["requests"] == 0
    assert report["achieved_rate"] == 0.0
    assert report["latency_ms"] == {"p50": None, "p90": None, "p99": None, "max": None}
    assert report["by_region"] == {}


# -- the clients -------------------------------------------------------------------------


def shared(target: Target) -> Shared:
    return Shared(target, ClientSettings(), lambda: 0.0, Budget(10, 10), threading.Event(), "test")


def test_a_fixed_address_is_used_without_a_dns_lookup() -> None:
    fixed = dataclasses.replace(TARGET, address="127.20.1.1")
    client = BrowserClient(0, shared(fixed), seed=1)
    assert client.current_address() == "127.20.1.1"
    assert client.log.resolutions == []
    for tab in client.tabs.values():
        tab.http.close()


@pytest.mark.parametrize(("share", "kinds"), [(1.0, {"read"}), (0.0, {"write"})])
def test_a_read_share_of_0_or_1_starts_one_tab_per_client(share: float, kinds: set[str]) -> None:
    load = Load(
        TARGET, 10, 0.0, lambda: 0.0, seed=1, tag="t", settings=ClientSettings(read_share=share)
    )
    load.start()
    assert load.join(5.0)
    assert {t.name.rpartition("-")[2] for t in load.threads} == kinds
    assert len(load.threads) == len(load.clients)
    assert load.attempts() == []


def test_an_interrupted_load_halts_its_clients_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(load_command, "watch", interrupted)
    clock = LoadClock()
    load = Load(TARGET, 10, 0.0, clock, seed=1, tag="t")
    said: list[str] = []
    ran = load_command.drive(load, clock, said.append)
    assert ran.interrupted
    assert 0 <= ran.ran_s < 1
    assert load.stop.is_set()
    assert said == [
        "interrupted: waiting for the requests in flight (Ctrl-C again to stop waiting)"
    ]
