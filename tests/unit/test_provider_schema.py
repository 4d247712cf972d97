"""The provider schema table cites every provider's source, argument by argument.

Every argument of every provider block, resource type and data source in the table
(nested blocks included) either cites the source line that declares it or says why it
is unconfirmed; a confirmed one cites the tagged releases its provider's entry names
(`confirmed_cites`). The cited lines were checked once against the providers'
repositories; CI has no copy of them, so these tests check the citations' form (and
that each tag names the commit the provider's entry says it is), not the text they
point at.
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
    provider_of,
    schema_table,
    walk_attributes,
)
from geoha.cloud.terraform import terraform_documents
from geoha.cloud.vms import cloud_plan
from geoha.spec import load_spec

ARGUMENTS = [
    (owner, name, spec)
    for owner, attributes in cited_tables().items()
    for name, spec in walk_attributes(attributes)
]
CITES = ("source", "later")


def citation_problems(cite: dict[str, Any], provider: dict[str, Any]) -> list[str]:
    """What is wrong with one `source` or `later` citation of a provider's repository
    (nothing, for a good one)."""
    commit, file, line = cite.get("commit"), cite.get("file"), cite.get("line")
    problems = []
    if not (isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit)):
        problems.append(f"commit {commit!r} is not 40 hex digits")
    if not (isinstance(file, str) and file and not file.startswith("/")):
        problems.append(f"file {file!r} is not a path in the repository")
    if not (isinstance(line, int) and not isinstance(line, bool) and line > 0):
        problems.append(f"line {line!r} is not a positive number")
    blob = f"https://github.com/{provider['repository']}/blob"
    if cite.get("url") != f"{blob}/{commit}/{file}#L{line}":
        problems.append(f"url {cite.get('url')!r} does not name that commit, file and line")
    tags = {commit: tag for tag, commit in provider["read"].items()}
    if cite.get("release") != tags.get(commit):
        problems.append(f"release {cite.get('release')!r} does not match commit {commit}")
    return problems


def rendered_owners() -> set[str]:
    """Every provider block, resource type and data source the reference module renders."""
    owners: set[str] = set()
    for document in terraform_documents(cloud_plan(load_spec(None))).values():
        owners |= {f"provider.{name}" for name in document.get("provider", {})}
        owners |= set(document.get("resource", {}))
        owners |= {f"data.{dtype}" for dtype in document.get("data", {})}
    return owners


def test_every_provider_block_resource_and_data_source_is_cited() -> None:
    table = schema_table()
    providers = {f"provider.{n}" for n, p in table["providers"].items() if "arguments" in p}
    data = {f"data.{dtype}" for dtype in table["data_sources"]}
    assert set(cited_tables()) == providers | set(table["resources"]) | data
    assert rendered_owners() <= set(cited_tables())
    assert {provider_of(owner) for owner in cited_tables()} <= set(table["providers"])
    assert len(ARGUMENTS) > 150


@pytest.mark.parametrize(
    ("owner", "name", "spec"), ARGUMENTS, ids=[f"{o}.{n}" for o, n, _ in ARGUMENTS]
)
def test_every_argument_cites_a_source_line_or_says_why_not(
    owner: str, name: str, spec: dict[str, Any]
) -> None:
    provider = schema_table()["providers"][provider_of(owner)]
    for key in CITES:
        if key in spec:
            assert citation_problems(spec[key], provider) == [], key
    if spec.get("status") == "confirmed":
        # Exactly the readings the provider's status rule asks for, at those releases.
        wanted = provider["confirmed_cites"]
        assert {key for key in CITES if key in spec} == set(wanted)
        assert {key: spec[key]["release"] for key in wanted} == wanted
        assert "why" not in spec and "doubt" not in spec
    else:
        assert spec.get("status") == "unconfirmed"
        assert isinstance(spec.get("why"), str) and spec["why"].strip()
        assert spec.get("doubt") in {d.value for d in Doubt}
        assert "later" not in spec


def test_each_provider_says_what_was_read_and_why_its_version() -> None:
    for name, provider in schema_table()["providers"].items():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", provider["repository"]), name
        assert all(re.fullmatch(r"[0-9a-f]{40}", c) for c in provider["read"].values()), name
        assert provider["status_rule"] and provider["why_this_version"], name
        assert provider["readable"], name
        confirmed = any(
            spec.get("status") == "confirmed"
            for owner, attributes in cited_tables().items()
            if provider_of(owner) == name
            for _, spec in walk_attributes(attributes)
        )
        # A provider with an unconfirmed argument says what would confirm it.
        assert confirmed or "to_confirm" in provider, name
    terraform = schema_table()["providers"]["terraform"]
    for cite in schema_table()["meta_arguments_sources"]:
        assert citation_problems(cite, terraform) == []
    # A provider block's `alias` is Terraform's own, cited there at both readings.
    alias_cites = schema_table()["provider_meta_arguments_sources"]
    assert schema_table()["provider_meta_arguments"] == ["alias"]
    assert {c["release"] for c in alias_cites} == set(terraform["confirmed_cites"].values())
    for cite in alias_cites:
        assert citation_problems(cite, terraform) == []


def test_each_pin_is_one_exact_version_and_the_module_requires_it() -> None:
    providers = schema_table()["providers"]
    main_document = terraform_documents(cloud_plan(load_spec(None)))["main.tf.json"]
    required = main_document["terraform"]["required_providers"]
    assert set(required) == set(providers) - {"terraform"}  # built in, not required
    for name, pin in required.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", pin["version"]), name
        assert pin == {"source": providers[name]["source"], "version": providers[name]["version"]}
    # The built-in provider's version is Terraform's own.
    assert main_document["terraform"]["required_version"] == providers["terraform"]["version"]


def test_arguments_left_out_on_purpose_are_unknown_to_the_checker() -> None:
    for rtype, entry in schema_table()["resources"].items():
        for name, why in entry.get("left_out", {}).items():
            assert name not in entry["attributes"] and why, f"{rtype}.{name}"
    node: dict[str, Any] = {
        "name": "n",
        "plan": "C3.8GB",
        "image": "Ubuntu-24.04",
        "project_id": "1",
    }
    problems = check_document({"resource": {"e2e_node": {"x": node | {"region": "ncr"}}}})
    assert "error: e2e_node.x.region: unknown argument" in {str(p) for p in problems}


def severities(document: dict[str, Any]) -> dict[str, Severity]:
    return {p.path: p.severity for p in check_document(document)}


def test_a_doubt_about_the_version_is_a_note_and_one_about_the_meaning_a_warning() -> None:
    node: dict[str, Any] = {
        "name": "n",
        "plan": "C3.8GB",
        "image": "Ubuntu-24.04",
        "project_id": "1",
    }
    node |= {"location": "Delhi", "security_group_ids": [7], "start_script": "#cloud-config"}
    assert severities({"resource": {"e2e_node": {"x": node}}}) == {
        "e2e_node.x.security_group_ids": Severity.NOTE,  # only at an untagged commit
        "e2e_node.x.start_script": Severity.WARNING,  # cloud-init or not: in no source
    }


def test_the_provider_blocks_are_checked_against_their_arguments() -> None:
    document = {"provider": {"e2e": {"api_key": "k", "auth_tokn": "t"}, "aws": {"regoin": "x"}}}
    assert severities(document) == {
        "provider.e2e.api_key": Severity.NOTE,
        "provider.e2e.auth_tokn": Severity.ERROR,
        "provider.e2e.auth_token": Severity.ERROR,
        "provider.aws.regoin": Severity.ERROR,
    }
    assert severities({"provider": {"aws": {"region": "x"}}}) == {
        "provider.aws.region": Severity.NOTE  # only at an untagged commit
    }


def test_several_blocks_of_one_provider_are_each_checked_and_need_distinct_aliases() -> None:
    blocks = [{"region": "us-east-1"}, {"alias": "mumbai", "region": "ap-south-1"}]
    assert severities({"provider": {"aws": blocks}}) == {
        "provider.aws[0].region": Severity.NOTE,
        "provider.aws[1].region": Severity.NOTE,
    }
    twice = [*blocks, {"alias": "mumbai", "regoin": "x"}]
    problems = {str(p) for p in check_document({"provider": {"aws": twice}})}
    assert "error: provider.aws[2]: another block has alias 'mumbai'" in problems
    assert "error: provider.aws[2].regoin: unknown argument" in problems
    problems = {str(p) for p in check_document({"provider": {"aws": [blocks[0], blocks[0]]}})}
    assert "error: provider.aws[1]: another block has no alias" in problems


def test_the_route53_validators_are_the_providers() -> None:
    check: dict[str, Any] = {"type": "HTTPS", "fqdn": "delhi.geoha.test"}
    problems = check_document({"resource": {"aws_route53_health_check": {"y": check}}})
    assert [p for p in problems if p.severity is Severity.ERROR] == []  # interval optional
    check |= {"request_interval": 20, "failure_threshold": 11, "child_health_threshold": -1}
    found = severities({"resource": {"aws_route53_health_check": {"y": check}}})
    assert found["aws_route53_health_check.y.request_interval"] is Severity.ERROR  # 10 or 30
    assert found["aws_route53_health_check.y.failure_threshold"] is Severity.ERROR  # 1-10
    # Only Route 53 refuses a negative threshold, or a weight above 255: not the provider.
    assert found["aws_route53_health_check.y.child_health_threshold"] is Severity.NOTE
    record: dict[str, Any] = {"zone_id": "Z1", "name": "app", "type": "A", "records": ["192.0.2.1"]}
    record |= {"set_identifier": "delhi", "weighted_routing_policy": [{"weight": 300}]}
    found = severities({"resource": {"aws_route53_record": {"x": record}}})
    assert found["aws_route53_record.x.weighted_routing_policy[0].weight"] is Severity.NOTE


def test_validated_values_are_errors_and_documented_values_warnings() -> None:
    lb: dict[str, Any] = {
        "plan_name": "E2E-LB-2",
        "lb_name": "lb",
        "project_id": "1",
        "location": "Delhi",
    }
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
