"""The vantage point's pure parts: its targets, the failure clock, the report."""

from __future__ import annotations

import pytest

from app.api.config import ConfigError, load_settings
from app.api.vantage import NodeView, VantageTarget, observe, parse_targets, report
from tests.unit.test_api_config import env


def test_targets_parse() -> None:
    text = "delhi-db=10.10.5.1:5432:8008,chennai-db=10.20.5.1:6432:9008"
    assert parse_targets(text) == [
        VantageTarget("delhi-db", "10.10.5.1", 5432, 8008),
        VantageTarget("chennai-db", "10.20.5.1", 6432, 9008),
    ]
    settings = load_settings(env(GEOHA_VANTAGE=text))
    assert [t.name for t in settings.vantage] == ["delhi-db", "chennai-db"]
    assert load_settings(env()).vantage == ()


@pytest.mark.parametrize(
    "text",
    [
        "delhi-db=10.10.5.1:5432",
        "delhi-db=10.10.5.1:5432:0",
        "Delhi=10.10.5.1:5432:8008",
        "delhi-db=10.10.5.1:5432:8008,delhi-db=10.20.5.1:5432:8008",
        "delhi-db=10.10.5.1:5432:8008,",
    ],
)
def test_bad_targets_name_the_variable(text: str) -> None:
    assert parse_targets(text) is None
    with pytest.raises(ConfigError) as exc:
        load_settings(env(GEOHA_VANTAGE=text))
    assert exc.value.variable == "GEOHA_VANTAGE"


def test_the_failure_clock_starts_at_the_first_failure_and_resets_on_success() -> None:
    view = observe(None, reached=False, at=5.0)
    view = observe(view, reached=False, at=5.5)
    assert view == NodeView(5.5, 5.0)
    assert observe(view, reached=True, at=6.0) == NodeView(6.0, None)


def test_the_report_gives_ages_not_clock_readings() -> None:
    views = {"delhi-db": NodeView(9.5, 7.0), "chennai-db": NodeView(9.8, None)}
    assert report(views, now=10.0) == {
        "delhi-db": {"reached": False, "observed_ago_s": 0.5, "failing_for_s": 3.0},
        "chennai-db": {"reached": True, "observed_ago_s": 0.2, "failing_for_s": None},
    }
