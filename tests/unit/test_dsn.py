from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from geoha.data.cluster import dsn
from geoha.errors import BadInput
from geoha.plan import Tools, expand
from geoha.spec import load_spec

PLAN = expand(load_spec(None), Path("/srv/run"), Tools("/p", "/e", "/pg"))


def parts(uri: str) -> tuple[str, list[str], dict[str, list[str]]]:
    split = urlsplit(uri)
    userinfo, hosts = split.netloc.split("@")
    return userinfo, hosts.split(","), parse_qs(split.query)


def test_write_dsn_lists_every_node_read_write_local_first() -> None:
    user, hosts, query = parts(dsn(PLAN, "chennai", write=True))
    assert user == "geoha_app"  # no password in the URI
    assert hosts == ["127.20.5.1:5432", "127.10.5.1:5432"]
    assert query["target_session_attrs"] == ["read-write"]
    assert query["passfile"] == ["/srv/run/pgpass"]
    assert urlsplit(dsn(PLAN, "chennai", write=True)).path == "/geoha"


def test_read_dsn_starts_with_the_local_node() -> None:
    _, hosts, query = parts(dsn(PLAN, "delhi", write=False))
    assert hosts[0] == "127.10.5.1:5432"
    assert query["target_session_attrs"] == ["any"]


@pytest.mark.parametrize("region", ["mumbai", "pune", ""])
def test_only_data_regions_have_a_dsn(region: str) -> None:
    with pytest.raises(BadInput, match="--region: a data region"):
        dsn(PLAN, region, write=True)
