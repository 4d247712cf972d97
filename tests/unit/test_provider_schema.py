"""The provider schema table cites the E2E provider's source, argument by argument.

Every argument of the provider block and of every `e2e_*` resource (nested blocks
included) either cites the source line that declares it or says why it is
unconfirmed; a confirmed one cites the tagged release v2.1.6 and the later 2.x code.
The cited lines were checked once against the provider's repository; CI has no copy
of it, so these tests check the citations' form, not the text they point at.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from geoha.cloud.render_commands import report
from geoha.cloud.schema import (
    Doubt,
    Problem,
    Severity,
    check_document,
    cited_tables,
    schema_table,
    walk_attributes,
)
from geoha.cloud.terraform import E2E_PROVIDER

V2_1_6 = "d979a498318f934599e6554fd0c1106e7c36ce5d"
BLOB = "https://github.com/e2eterraformprovider/terraform-provider-e2e/blob"

ARGUMENTS = [
    (owner, name, spec)
    for owner, attributes in cited_tables().items()
    for name, spec in walk_attributes(attributes)
]


def citation_problems(cite: dict[str, Any]) -> list[str]:
    """What is wrong with one `source` or `later` citation (nothing, for a good one)."""
    commit, file, line = cite.get("commit"), cite.get("file"), cite.get("line")
    problems = []
    if not (isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit)):
        problems.append(f"commit {commit!r} is not 40 hex digits")
    if not (isinstance(file, str) and file and not file.startswith("/")):
        problems.append(f"file {file!r} is not a path in the repository")
    if not (isinstance(line, int) and not isinstance(line, bool) and line > 0):
        problems.append(f"line {line!r} is not a positive number")
    if cite.get("url") != f"{BLOB}/{commit}/{file}#L{line}":
        problems.append(f"url {cite.get('url')!r} does not name that commit, file and line")
    if cite.get("release") != ("v2.1.6" if commit == V2_1_6 else None):
        problems.append(f"release {cite.get('release')!r} does not match commit {commit}")
    return problems


def test_every_e2e_resource_and_the_provider_block_are_cited() -> None:
    table = schema_table()
    e2e = {rtype for rtype in table["resources"] if rtype.startswith("e2e_")}
    assert set(cited_tables()) == {"provider.e2e"} | e2e
    assert len(ARGUMENTS) > 100


@pytest.mark.parametrize(
    ("owner", "name", "spec"), ARGUMENTS, ids=[f"{o}.{n}" for o, n, _ in ARGUMENTS]
)
def test_every_argument_cites_a_source_line_or_says_why_not(
    owner: str, name: str, spec: dict[str, Any]
) -> None:
    for key in ("source", "later"):
        if key in spec:
            assert citation_problems(spec[key]) == [], key
    if spec.get("status") == "confirmed":
        assert spec["source"]["release"] == "v2.1.6"
        assert spec["later"]["release"] is None  # the 2.x code read after v2.1.6
        assert "why" not in spec and "doubt" not in spec
    else:
        assert spec.get("status") == "unconfirmed"
        assert isinstance(spec.get("why"), str) and spec["why"].strip()
        assert spec.get("doubt") in {d.value for d in Doubt}
        assert "later" not in spec


def test_the_pin_is_one_exact_version_and_the_module_requires_it() -> None:
    provider = schema_table()["providers"]["e2e"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", provider["version"])
    assert {"source": provider["source"], "version": provider["version"]} == E2E_PROVIDER


def test_arguments_left_out_on_purpose_are_unknown_to_the_checker() -> None:
    for rtype, entry in schema_table()["resources"].items():
        for name, why in entry.get("left_out", {}).items():
            assert name not in entry["attributes"] and why, f"{rtype}.{name}"
    node = {"name": "n", "plan": "C3.8GB", "image": "Ubuntu-24.04", "project_id": "1"}
    problems = check_document({"resource": {"e2e_node": {"x": node | {"region": "ncr"}}}})
    assert "error: e2e_node.x.region: unknown argument" in {str(p) for p in problems}


def severities(document: dict[str, Any]) -> dict[str, Severity]:
    return {p.path: p.severity for p in check_document(document)}


def test_a_doubt_about_the_version_is_a_note_and_one_about_the_meaning_a_warning() -> None:
    node = {"name": "n", "plan": "C3.8GB", "image": "Ubuntu-24.04", "project_id": "1"}
    node |= {"location": "Delhi", "security_group_ids": [7], "start_script": "#cloud-config"}
    assert severities({"resource": {"e2e_node": {"x": node}}}) == {
        "e2e_node.x.security_group_ids": Severity.NOTE,  # only at an untagged commit
        "e2e_node.x.start_script": Severity.WARNING,  # cloud-init or not: in no source
    }


def test_the_provider_block_is_checked_against_its_arguments() -> None:
    document = {"provider": {"e2e": {"api_key": "k", "auth_tokn": "t"}, "aws": {"region": "x"}}}
    assert severities(document) == {
        "provider.e2e.api_key": Severity.NOTE,
        "provider.e2e.auth_tokn": Severity.ERROR,
        "provider.e2e.auth_token": Severity.ERROR,
    }


def test_validated_values_are_errors_and_documented_values_warnings() -> None:
    lb = {"plan_name": "E2E-LB-2", "lb_name": "lb", "project_id": "1", "location": "Delhi"}
    lb |= {"lb_mode": "TCP", "lb_type": "Internal"}
    lb["tcp_backend"] = [
        {"backend_name": "pg", "port": "443", "balance": "roundrobin", "servers": []}
    ]
    found = severities({"resource": {"e2e_loadbalancer": {"x": lb}}})
    assert found["e2e_loadbalancer.x.lb_mode"] is Severity.ERROR  # the provider's own check
    assert found["e2e_loadbalancer.x.tcp_backend[0].port"] is Severity.ERROR  # a reserved port
    assert found["e2e_loadbalancer.x.lb_type"] is Severity.WARNING  # only E2E's docs say


def test_render_prints_each_warning_and_counts_the_notes_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report(
        [
            Problem(Severity.NOTE, "e2e_vpc.delhi.vpc_name", "unconfirmed (version): ..."),
            Problem(Severity.NOTE, "e2e_vpc.delhi.location", "unconfirmed (version): ..."),
            Problem(Severity.WARNING, "e2e_node.x.start_script", "unconfirmed (meaning): ..."),
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "geoha: warning: e2e_node.x.start_script: unconfirmed (meaning): ..."
    assert err[1].startswith("geoha: note: 2 uses of arguments ")
    assert err[1].endswith("see docs/PROVIDER.md")
    assert len(err) == 2
