"""`geoha render terraform`: Terraform JSON that conforms to the providers' schemas.

Golden files pin the output: regenerate with `make golden`
(GEOHA_UPDATE_GOLDEN=1), then review the diff.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from geoha.cli import main
from geoha.cloud import render_commands
from geoha.cloud.cloudinit import render_cloud_init
from geoha.cloud.schema import (
    Severity,
    check_document,
    check_references,
    schema_table,
    unconfirmed_entries,
)
from geoha.cloud.terraform import render_terraform, terraform_documents
from geoha.cloud.terraform_aws import architecture
from geoha.cloud.terraform_e2e import policies
from geoha.cloud.terraform_route53 import route53_interval
from geoha.cloud.vms import cloud_plan
from geoha.plan import Tools, expand
from geoha.render.files import File
from geoha.render.haproxy import frontend_lb_config
from geoha.spec import Autoscale, load_spec, parse_spec
from tests.geoha_cli import geoha
from tests.unit.cloud_specs import E2E_WITNESS, EXTERNAL_WITNESS, toml_text, witness_on

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "cloud" / "terraform"
UPDATE = os.environ.get("GEOHA_UPDATE_GOLDEN") == "1"

THREE_REGIONS: dict[str, Any] = {
    "regions": {
        "delhi": {"role": "primary", "cidr": "10.10.0.0/16"},
        "chennai": {"role": "replica", "cidr": "10.20.0.0/16"},
        "hyderabad": {"role": "replica", "cidr": "10.40.0.0/16"},
        "mumbai": {"role": "witness", "cidr": "10.30.0.0/16"},
    }
}
FAKE_SECRETS = {
    "superuser_password": "fake-superuser-7c1d0a93b5e2",
    "replication_password": "fake-replicator-0e9f4b27c6a1",
    "app_password": "fake-application-58d3e1a0f7b4",
}


def documents(spec_data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return terraform_documents(cloud_plan(parse_spec(spec_data or {})))


def resources(spec_data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for doc in documents(spec_data).values():
        for rtype, instances in doc.get("resource", {}).items():
            merged.setdefault(rtype, {}).update(instances)
    return merged


def golden_files() -> list[File]:
    """The module's own files; its helper is the package's source (tested below)."""
    files = render_terraform(cloud_plan(load_spec(None)))
    return [f for f in files if f.path.parent == Path() and f.path.suffix != ".py"]


@pytest.mark.parametrize("file", golden_files(), ids=lambda f: str(f.path))
def test_terraform_matches_golden(file: File) -> None:
    golden = GOLDEN / file.path
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(file.text)
    assert golden.exists(), f"no golden file {golden}: run `make golden`"
    assert file.text == golden.read_text(), f"{file.path} differs from its golden file"


def test_the_module_carries_every_vms_cloud_init() -> None:
    plan = cloud_plan(load_spec(None))
    in_module = {f.path: f.text for f in render_terraform(plan) if f.path.parts[0] == "cloud-init"}
    alone = {Path("cloud-init") / f.path: f.text for f in render_cloud_init(plan)}
    assert in_module == alone
    starts = [n["start_script"] for n in resources()["e2e_node"].values()]
    starts += [i["user_data_base64"] for i in resources()["aws_instance"].values()]
    assert sorted(s.split("/cloud-init/")[1].split('"')[0] for s in starts) == sorted(
        p.name for p in alone
    )


@pytest.mark.parametrize(
    "spec_data",
    [{}, THREE_REGIONS, {"traffic": {"api_route": "via-web"}}, E2E_WITNESS, EXTERNAL_WITNESS],
    ids=["reference", "three-regions", "via-web", "e2e-witness", "external-witness"],
)
def test_every_resource_conforms_to_the_schema_table(spec_data: dict[str, Any]) -> None:
    unconfirmed = {e.split(" ")[0] for e in unconfirmed_entries()}
    for name, doc in documents(spec_data).items():
        problems = check_document(doc)
        errors = [str(p) for p in problems if p.severity is Severity.ERROR]
        assert errors == [], name
        for warning in (p for p in problems if p.severity is Severity.WARNING):
            # A warning may only come from an entry the table marks unconfirmed.
            parts = [part.split("[")[0] for part in warning.path.split(".")]
            assert f"{parts[0]}.{'.'.join(parts[2:])}" in unconfirmed, str(warning)


@pytest.mark.parametrize(
    "spec_data",
    [{}, THREE_REGIONS, {"traffic": {"api_route": "via-web"}}, E2E_WITNESS, EXTERNAL_WITNESS],
    ids=["reference", "three-regions", "via-web", "e2e-witness", "external-witness"],
)
def test_every_reference_names_something_declared(spec_data: dict[str, Any]) -> None:
    assert [str(p) for p in check_references(documents(spec_data))] == []


def test_the_reference_checker_catches_dangling_references() -> None:
    docs = documents()
    docs["route53.tf.json"]["resource"]["aws_route53_record"]["delhi_db_internal"]["records"] = [
        "${e2e_node.delhi_db.private_ip}"
    ]
    docs["e2e.tf.json"]["resource"]["e2e_image"]["delhi_web"]["depends_on"] = ["terraform_data.x"]
    docs["main.tf.json"]["output"]["url"]["value"] = "http://${var.zone}/"
    docs["e2e.tf.json"]["data"]["external"]["delhi_db_address"]["query"]["node_id"] = (
        "${data.external.nowhere.result.id}"
    )
    messages = {str(p) for p in check_references(docs)}
    assert messages == {
        "error: route53.tf.json.resource.aws_route53_record.delhi_db_internal.records[0]: "
        "e2e_node.delhi_db.private_ip: e2e_node has no attribute private_ip",
        "error: e2e.tf.json.resource.e2e_image.delhi_web.depends_on[0]: "
        "terraform_data.x is not declared",
        "error: main.tf.json.output.url.value: undeclared variable var.zone",
        "error: e2e.tf.json.data.external.delhi_db_address.query.node_id: "
        "data.external.nowhere is not declared",
    }


def test_the_schema_checker_catches_what_it_must() -> None:
    bad = {
        "resource": {
            "e2e_node": {"x": {"name": "has space", "plan": "C3.8GB", "imagee": "Ubuntu-24.04"}},
            "aws_route53_health_check": {"y": {"type": "HTTP", "request_interval": 20}},
        }
    }
    messages = {str(p) for p in check_document(bad)}
    assert "error: e2e_node.x.imagee: unknown argument" in messages
    assert "error: e2e_node.x.image: required argument missing" in messages
    assert "error: e2e_node.x.project_id: required argument missing" in messages
    assert any(m.startswith("error: e2e_node.x.name: expected to match") for m in messages)
    assert any(m.startswith("error: aws_route53_health_check.y.request_interval") for m in messages)


def test_schema_table_names_its_sources() -> None:
    table = schema_table()
    for provider in table["providers"].values():
        assert provider["sources"] and provider["version"] and provider["describes"]
    for rtype, entry in table["resources"].items():
        assert entry["sources"], rtype


def test_providers_are_pinned_and_configured_from_variables() -> None:
    main_doc = documents()["main.tf.json"]
    providers = main_doc["terraform"]["required_providers"]
    assert providers["e2e"]["source"] == "e2eterraformprovider/e2e"
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert all(p["version"] for p in providers.values())
    assert main_doc["provider"]["e2e"] == {
        "api_key": "${var.e2e_api_key}",
        "auth_token": "${var.e2e_auth_token}",
    }


def test_every_secret_is_a_sensitive_variable() -> None:
    variables = documents()["main.tf.json"]["variable"]
    secrets = [
        "e2e_api_key",
        "e2e_auth_token",
        "ssh_public_key",
        "db_superuser_password",
        "db_replication_password",
        "db_app_password",
    ]
    for name in secrets:
        assert variables[name]["sensitive"] is True, name
    assert all("default" not in variables[name] for name in secrets)


def test_no_secret_in_any_rendered_file(tmp_path: Path) -> None:
    topology = tmp_path / "geoha.toml"
    lines = ["[database]"] + [f'{key} = "{value}"' for key, value in FAKE_SECRETS.items()]
    topology.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["render", "terraform", str(out), "-f", str(topology)]) == 0
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 13
    for path in written:
        text = path.read_text(encoding="utf-8")
        for value in FAKE_SECRETS.values():
            assert value not in text, path


def test_three_data_regions_render_three_regions(tmp_path: Path) -> None:
    res = resources(THREE_REGIONS)
    assert res["e2e_vpc"]["hyderabad"]["vpc_name"] == "geoha-hyderabad"
    for region in ("delhi", "chennai", "hyderabad"):
        assert f"{region}_db" in res["e2e_node"]
        assert {f"{region}_web", f"{region}_api"} <= set(res["e2e_scaler_group"])
        assert {f"{region}_fe", f"{region}_be"} <= set(res["e2e_loadbalancer"])
        assert region in res["aws_route53_health_check"]
        assert res["aws_route53_record"][f"{region}_weighted"]["set_identifier"] == region
    assert set(res["aws_route53_health_check"]) == {"delhi", "chennai", "hyderabad"}
    assert "mumbai_etcd" in res["e2e_node"] and "mumbai_db" not in res["e2e_node"]
    replication = [r for r in res["e2e_security_group"]["delhi_db_sg"]["rules"] if "size" in r]
    networks = {
        f"${{cidrhost(data.external.{region}_network.result.cidr, 0)}}"
        for region in ("chennai", "hyderabad", "mumbai")
    }
    assert {r["network_cidr"] for r in replication} >= networks


def test_weighted_records_and_health_checks_follow_the_spec() -> None:
    data = {"dns": {"ttl_s": 20, "health_check_interval_s": 25, "failure_threshold": 2}}
    data["regions"] = {
        "delhi": {"role": "primary", "dns": {"weight": 80}},
        "chennai": {"role": "replica", "cidr": "10.20.0.0/16", "dns": {"weight": 20}},
        "mumbai": {"role": "witness", "cidr": "10.30.0.0/16"},
    }
    res = resources(data)
    check = res["aws_route53_health_check"]["delhi"]
    assert (check["request_interval"], check["failure_threshold"]) == (30, 2)
    # Over HTTPS, through the web tier: a dead web tier or HTTPS listener takes the region
    # out of DNS, not only a dead API or database.
    assert (check["resource_path"], check["type"], check["port"]) == ("/health/full", "HTTPS", 443)
    assert (check["fqdn"], check["enable_sni"]) == ("delhi.geoha.test", True)
    assert check["ip_address"] == "${e2e_loadbalancer.delhi_fe.public_ip}"
    record = res["aws_route53_record"]["delhi_weighted"]
    assert record["weighted_routing_policy"] == [{"weight": 80}]
    assert (record["ttl"], record["type"], record["name"]) == (20, "A", "app.geoha.test")
    assert record["records"] == ["${e2e_loadbalancer.delhi_fe.public_ip}"]
    assert record["health_check_id"] == "${aws_route53_health_check.delhi.id}"
    assert record["zone_id"] == "${var.route53_zone_id}"


@pytest.mark.parametrize(
    ("spec_s", "route53_s"), [(1, 10), (10, 10), (20, 10), (21, 30), (30, 30), (300, 30)]
)
def test_health_check_interval_maps_to_the_nearest_allowed(spec_s: int, route53_s: int) -> None:
    assert route53_interval(spec_s) == route53_s


def test_scaler_groups_follow_the_autoscale_policy() -> None:
    scale = {"min": 2, "desired": 3, "max": 7, "scale_up_cpu_percent": 75.5}
    scale |= {"scale_down_cpu_percent": 25.0, "cooldown_s": 45.0, "scale_in_stabilization_s": 95.0}
    data = {"regions": {"delhi": {"role": "primary", "api": {"autoscale": scale}}}}
    data["regions"] |= {
        "chennai": {"role": "replica", "cidr": "10.20.0.0/16"},
        "mumbai": {"role": "witness", "cidr": "10.30.0.0/16"},
    }
    group = resources(data)["e2e_scaler_group"]["delhi_api"]
    assert (group["min_nodes"], group["desired"], group["max_nodes"]) == (2, 3, 7)
    up, down = group["policy"]
    assert (up["adjust"], up["operator"], up["value"], up["cooldown"]) == (1, ">", "75.5", "45")
    assert (down["adjust"], down["operator"], down["value"]) == (-1, "<", "25")
    assert (down["period_number"], down["period_seconds"]) == ("10", "10")  # 95 s -> 10 x 10 s
    assert group["vm_image_name"] == "${e2e_image.delhi_api.name}"
    assert policies(Autoscale())[1]["period_number"] == "6"  # the default 60 s window


def test_frontend_lb_is_the_only_public_entry() -> None:
    res = resources()
    fe, be = res["e2e_loadbalancer"]["delhi_fe"], res["e2e_loadbalancer"]["delhi_be"]
    assert (fe["lb_type"], fe["lb_mode"], fe["plan_name"]) == ("External", "Both", "E2E-LB-2")
    assert (be["lb_type"], be["lb_mode"]) == ("Internal", "HTTP")
    assert {b["check_url"] for b in fe["backends"]} == {"/health/", "/health"}
    assert be["backends"][0]["check_url"] == "/health"
    assert [m["acl_backend"] for m in fe["acl_map"]] == ["api", "api"]
    for name, group in res["e2e_security_group"].items():
        public = [
            r for r in group["rules"] if r["rule_type"] == "Inbound" and r["network"] == "any"
        ]
        assert public == [], name
        ssh = [r for r in group["rules"] if r.get("port_range") == "22"]
        assert ssh[0]["network_cidr"] == "${cidrhost(var.admin_cidr, 0)}", name


def test_via_web_route_sends_everything_to_the_web_tier() -> None:
    fe = resources({"traffic": {"api_route": "via-web"}})["e2e_loadbalancer"]["delhi_fe"]
    assert [b["name"] for b in fe["backends"]] == ["web"]
    assert "acl_list" not in fe


def test_outputs_name_each_regions_entry() -> None:
    outputs = documents(THREE_REGIONS)["main.tf.json"]["output"]
    for region in ("delhi", "chennai", "hyderabad"):
        assert outputs[f"entry_{region}"]["value"] == (
            f"${{e2e_loadbalancer.{region}_fe.public_ip}}"
        )


def test_bad_file_exits_2_with_the_dotted_path_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[regions.delhi.api.autoscale]\nmaxx = 3\n", encoding="utf-8")
    result = geoha(tmp_path, "render", "terraform", str(tmp_path / "out"), "-f", str(bad))
    assert result.returncode == 2
    assert "regions.delhi.api.autoscale.maxx" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (
            '[regions.hyderabad]\nrole = "replica"\ncidr = "10.40.0.0/16"\n',
            "regions.hyderabad.cloud.location: 'Hyderabad' (the region's name) is no E2E location",
        ),
        (
            '[regions.chennai.cloud]\nlocation = "Chenai"\n',
            "regions.chennai.cloud.location: 'Chenai' (set) is no E2E location: expected one of "
            "Delhi, Chennai, Mumbai, Delhi-NCR-2",
        ),
    ],
)
def test_a_location_e2e_does_not_have_stops_the_render(
    tmp_path: Path, extra: str, complaint: str
) -> None:
    regions = (
        '[regions.delhi]\nrole = "primary"\n[regions.chennai]\nrole = "replica"\n'
        'cidr = "10.20.0.0/16"\n[regions.mumbai]\nrole = "witness"\ncidr = "10.30.0.0/16"\n'
    )
    topology = tmp_path / "geoha.toml"
    topology.write_text(regions + extra, encoding="utf-8")
    for kind in ("terraform", "cloud-init"):
        result = geoha(tmp_path, "render", kind, str(tmp_path / "out"), "-f", str(topology))
        assert result.returncode == 2, result.stderr
        assert complaint in result.stderr
        assert not (tmp_path / "out").exists()


def test_cloud_init_command_writes_one_file_per_vm(tmp_path: Path) -> None:
    result = geoha(tmp_path, "render", "cloud-init", "out")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("*.yaml"))) == 7


def test_a_failed_render_leaves_out_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert main(["render", "terraform", str(out)]) == 0
    (out / "terraform.tfstate").write_text("{}")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(*_: Any, **__: Any) -> list[Path]:
        raise OSError("disk full")

    monkeypatch.setattr(render_commands, "write_files", fail)
    with pytest.raises(OSError):
        main(["render", "terraform", str(out)])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_a_new_render_keeps_the_terraform_state(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["render", "terraform", str(out)]) == 0
    (out / "terraform.tfstate").write_text('{"version": 4}')
    (out / ".terraform").mkdir()
    (out / "e2e.tf.json").write_text("stale")
    assert main(["render", "terraform", str(out)]) == 0
    assert (out / "terraform.tfstate").read_text() == '{"version": 4}'
    assert (out / ".terraform").is_dir()
    assert json.loads((out / "e2e.tf.json").read_text())["resource"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_render_reports_what_the_schema_table_doubts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "terraform", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    # The reference's witness is on AWS: no E2E location of it to doubt.
    assert "mumbai" not in err
    # No source says whether E2E runs start_script as cloud-init: one warning line naming
    # every node it is in.
    line = next(x for x in err.splitlines() if "warning: e2e_node.*.start_script" in x)
    assert "unconfirmed (meaning)" in line
    assert line.endswith(
        "(6 uses, in delhi_db, delhi_web_template, delhi_api_template, "
        "chennai_db, chennai_web_template, chennai_api_template)"
    )
    assert len(err.splitlines()) == 7  # 6 kinds of warning and the note
    # A witness on E2E in Mumbai: E2E's API reference does not list that location.
    (tmp_path / "e2e.toml").write_text(toml_text(E2E_WITNESS))
    assert (
        main(["render", "terraform", str(tmp_path / "e2e"), "-f", str(tmp_path / "e2e.toml")]) == 0
    )
    err = capsys.readouterr().err
    assert "warning: e2e_node.mumbai_etcd.location: expected one of ['Delhi', 'Chennai']" in err
    assert "the Mumbai region has been discontinued" in err
    # Arguments only at untagged commits (2.2.7's source is not reachable): one note line.
    assert "not shown to be in the pinned release" in err and "see docs/PROVIDER.md" in err
    assert "unconfirmed (version)" not in err


def test_render_writes_nothing_the_provider_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def dangling(plan: Any) -> list[File]:
        files = render_terraform(plan)
        main_file = next(f for f in files if f.path == Path("main.tf.json"))
        doc = json.loads(main_file.text)
        doc["output"]["url"]["value"] = "${var.nowhere}"
        return [File(f.path, json.dumps(doc)) if f is main_file else f for f in files]

    monkeypatch.setitem(render_commands.RENDERERS, "terraform", dangling)
    out = tmp_path / "out"
    assert main(["render", "terraform", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: main.tf.json.output.url.value: undeclared variable var.nowhere" in err
    assert "nothing written" in err
    assert list(tmp_path.iterdir()) == []


def test_the_reference_witness_is_one_aws_instance_reached_across_the_internet() -> None:
    docs, res = documents(), resources()
    main_doc = docs["main.tf.json"]
    assert main_doc["provider"]["aws"] == [
        {"region": "${var.aws_region}"},  # Route 53's
        {"alias": "mumbai", "region": "ap-south-1"},
    ]
    aws = docs["aws.tf.json"]
    for section in (aws["resource"], aws["data"]):
        for rtype, instances in section.items():
            for name, body in instances.items():
                assert body["provider"] == "aws.mumbai", f"{rtype}.{name}"
    image = aws["data"]["aws_ami"]["mumbai"]
    assert image["owners"] == ["099720109477"] and image["most_recent"] is True
    assert image["filter"] == [
        {"name": "name", "values": ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"]},
        {"name": "architecture", "values": ["arm64"]},
    ]
    instance = res["aws_instance"]["mumbai_etcd"]
    assert instance["instance_type"] == "t4g.nano"
    assert instance["user_data_base64"].startswith(
        '${base64gzip(templatefile("${path.module}/cloud-init/mumbai-etcd.yaml"'
    )
    assert instance["metadata_options"] == [{"http_endpoint": "enabled", "http_tokens": "required"}]
    assert instance["root_block_device"][0]["encrypted"] is True
    assert instance["lifecycle"] == {"ignore_changes": ["ami", "user_data_base64"]}
    # The Elastic IP is on the interface before the instance boots (packages at first boot).
    eip = res["aws_eip"]["mumbai_etcd"]
    assert eip["network_interface"] == "${aws_network_interface.mumbai_etcd.id}"
    assert "aws_eip.mumbai_etcd" in instance["depends_on"]
    assert instance["network_interface"][0]["network_interface_id"] == eip["network_interface"]
    # etcd only from the database VMs' public addresses; SSH only from admin_cidr.
    ingress = res["aws_vpc_security_group_ingress_rule"]
    assert sorted((r["cidr_ipv4"], r["from_port"]) for r in ingress.values()) == [
        ("${data.external.chennai_db_public.result.public_ip}/32", 2379),
        ("${data.external.chennai_db_public.result.public_ip}/32", 2380),
        ("${data.external.delhi_db_public.result.public_ip}/32", 2379),
        ("${data.external.delhi_db_public.result.public_ip}/32", 2380),
        ("${var.admin_cidr}", 22),
    ]
    assert all(
        r["from_port"] == r["to_port"] and r["ip_protocol"] == "tcp" for r in ingress.values()
    )
    # Nothing of the witness on E2E; the data regions admit etcd from its Elastic IP only.
    assert list(res["e2e_vpc"]) == ["delhi", "chennai"]
    assert [n for n in res["terraform_data"] if n.startswith("peering")] == [
        "peering_delhi_chennai"
    ]
    elastic = {"network": "manual", "network_cidr": "${aws_eip.mumbai_etcd.public_ip}", "size": 1}
    db_rules = res["e2e_security_group"]["delhi_db_sg"]["rules"]
    from_witness = [r for r in db_rules if {k: r[k] for k in elastic if k in r} == elastic]
    assert sorted(r["port_range"] for r in from_witness) == ["2379", "2380"]
    # Names: the witness's at its Elastic IP; each database VM's public address for it.
    records = res["aws_route53_record"]
    assert records["mumbai_etcd_internal"]["records"] == ["${aws_eip.mumbai_etcd.public_ip}"]
    assert records["delhi_db_public"]["name"] == "delhi-db.public.internal.geoha.test"
    assert records["delhi_db_public"]["records"] == [
        "${data.external.delhi_db_public.result.public_ip}"
    ]
    lookup = docs["e2e.tf.json"]["data"]["external"]["delhi_db_public"]
    assert lookup["program"][-1] == "node-public-address"
    assert lookup["query"]["known"] == '${coalesce(e2e_node.delhi_db.public_ip_address, "none")}'
    assert main_doc["output"]["witness_mumbai"]["value"] == "${aws_eip.mumbai_etcd.public_ip}"
    assert "cloud_init_mumbai_etcd" not in main_doc["output"]


def test_the_witness_image_follows_the_instance_types_architecture() -> None:
    x86 = documents(
        witness_on({"provider": "aws", "location": "ap-south-1", "instance_type": "t3.micro"})
    )
    image = x86["aws.tf.json"]["data"]["aws_ami"]["mumbai"]
    assert image["filter"][0]["values"] == [
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
    ]
    assert image["filter"][1]["values"] == ["x86_64"]
    assert architecture("m7gd.large") == architecture("c6gn.medium") == "arm64"
    assert architecture("g4dn.xlarge") == architecture("m7i-flex.large") == "amd64"


def test_the_witness_user_data_fits_what_aws_takes() -> None:
    """AWS takes 16 KB of user data: the witness's cloud-init, filled, goes gzip-compressed."""
    plan = cloud_plan(load_spec(None))
    text = next(f.text for f in render_cloud_init(plan) if f.path.name == "mumbai-etcd.yaml")
    pem = "-----BEGIN X-----\n" + "A" * 1800 + "\n-----END X-----\n"
    filled = re.sub(r"(?<!\$)\$\{[a-z0-9_]+\}", base64.b64encode(pem.encode()).decode(), text)
    assert len(base64.b64encode(gzip.compress(filled.encode()))) < 16 * 1024


def test_an_external_witness_gets_its_cloud_init_and_an_address_variable_only() -> None:
    docs = documents(EXTERNAL_WITNESS)
    res = resources(EXTERNAL_WITNESS)
    assert list(res["e2e_vpc"]) == ["delhi", "chennai"]
    assert not any(name.startswith("mumbai") for name in res["e2e_node"])
    assert not any("mumbai" in name for name in res["e2e_security_group"])
    assert list(res["e2e_ssh_key"]) == ["ssh_delhi", "ssh_chennai"]
    assert [n for n in res["terraform_data"] if n.startswith("peering")] == [
        "peering_delhi_chennai"
    ]
    assert list(docs["e2e.tf.json"]["data"]["external"]) == [
        "delhi_network",
        "chennai_network",
        "delhi_db_address",
        "chennai_db_address",
        "delhi_be_address",
        "chennai_be_address",
    ]
    # Its cloud-init asks for the internal zone's name servers: Terraform fills it.
    user_data = docs["main.tf.json"]["output"]["cloud_init_mumbai_etcd"]["value"]
    assert user_data.startswith('${templatefile("${path.module}/cloud-init/mumbai-etcd.yaml"')
    assert "internal_name_servers = join" in user_data
    record = res["aws_route53_record"]["mumbai_etcd_internal"]
    assert record["records"] == ["${var.witness_address_mumbai}"]
    variable = docs["main.tf.json"]["variable"]["witness_address_mumbai"]
    assert variable["validation"][0]["condition"] == (
        '${try(cidrhost(format("%s/16", var.witness_address_mumbai), 0), "") == "10.30.0.0"}'
    )
    # The data regions still let the witness's network reach etcd.
    db_rules = res["e2e_security_group"]["delhi_db_sg"]["rules"]
    assert {"10.30.0.0"} <= {r.get("network_cidr") for r in db_rules}
    problems = [p for d in docs.values() for p in check_document(d)] + check_references(docs)
    assert [str(p) for p in problems if p.severity is Severity.ERROR] == []
    files = {
        str(f.path): f.text for f in render_terraform(cloud_plan(parse_spec(EXTERNAL_WITNESS)))
    }
    assert "cloud-init/mumbai-etcd.yaml" in files
    assert 'witness_address_mumbai = "" # inside 10.30.0.0/16' in files["terraform.tfvars.example"]


@pytest.mark.parametrize(
    ("switch", "cloud", "local"), [(None, True, False), (True, True, True), (False, False, False)]
)
def test_the_https_redirect_is_one_switch_for_both_runtimes(
    switch: bool | None, cloud: bool, local: bool
) -> None:
    """On in the cloud and off locally by default; `traffic.redirect_to_https` sets both."""
    data: dict[str, Any] = {} if switch is None else {"traffic": {"redirect_to_https": switch}}
    lb = resources(data)["e2e_loadbalancer"]["delhi_fe"]
    assert lb["ssl_context"] == [{"redirect_to_https": cloud}]
    plan = expand(parse_spec(data), Path("/srv/run"), Tools("/p", "/e", "/pg"))
    config = frontend_lb_config(plan, plan.node("delhi-fe"))
    redirect = (
        "http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[url] "
        "code 308 if !{ ssl_fc } !is_dns_health"
    )
    assert (redirect in config) is local
    assert ("acl is_dns_health path /health/full" in config) is local


def test_a_second_apply_changes_nothing_the_provider_or_autoscaler_owns() -> None:
    """What the provider refuses to update (start_script), sets by itself (a template's
    power state) or the autoscaler moves (desired) is ignored after creation; a myNetwork
    rule carries the size the provider reads back."""
    found = resources()
    for name, node in found["e2e_node"].items():
        ignored = node["lifecycle"]["ignore_changes"]
        assert "start_script" in ignored, name
        assert ("power_status" in ignored) == name.endswith("_template"), name
        assert "power_status" not in node, name
    for group in found["e2e_scaler_group"].values():
        assert group["lifecycle"] == {"ignore_changes": ["desired"], "create_before_destroy": True}
    rules = [r for sg in found["e2e_security_group"].values() for r in sg["rules"]]
    assert all(r["size"] == 512 for r in rules if r["network"] == "myNetwork")
    # A rule's size is an address count (a /23 admits 512 addresses, not 23), of the
    # network E2E gave the other region's VPC.
    replication = next(r for r in rules if r["description"] == "replication")
    network = "data.external.chennai_network.result.cidr"
    assert replication["network_cidr"] == f"${{cidrhost({network}, 0)}}"
    assert replication["size"] == f'${{pow(2, 32 - tonumber(split("/", {network})[1]))}}'


def test_a_changed_template_rolls_out_as_a_new_image_and_scaler_group() -> None:
    """A template's version is its filled start script's hash; the template, its image and
    its scaler group carry it in their names, and each is replaced when it changes."""
    found = resources()
    build = found["terraform_data"]["delhi_web_build"]["input"]["version"]
    template = found["e2e_node"]["delhi_web_template"]
    script = template["start_script"].removeprefix("${").removesuffix("}")
    assert build == f"${{nonsensitive(substr(sha256(sensitive({script})), 0, 8))}}"
    version = "${terraform_data.delhi_web_build.output.version}"
    assert template["name"] == f"geoha-delhi-web-template-{version}"
    assert template["lifecycle"]["replace_triggered_by"] == ["terraform_data.delhi_web_build"]
    built = found["terraform_data"]["delhi_web_built"]
    assert built["triggers_replace"] == ["${e2e_node.delhi_web_template.id}"]
    assert "wait-built" in built["provisioner"][0]["local-exec"]["command"]
    image = found["e2e_image"]["delhi_web"]
    # The build's ID too: a template built again at the same version (-replace) still
    # makes an image and a group of new names.
    tag = f"{version}-${{substr(terraform_data.delhi_web_built.id, 0, 6)}}"
    assert image["name"] == f"geoha-delhi-web-{tag}"
    assert image["lifecycle"] == {
        "replace_triggered_by": ["terraform_data.delhi_web_built"],
        "create_before_destroy": True,
    }
    group = found["e2e_scaler_group"]["delhi_web"]
    assert group["name"] == f"geoha-delhi-web-{tag}"
    assert group["vm_image_name"] == "${e2e_image.delhi_web.name}"
    # ... once E2E has saved it (the provider's e2e_image does not wait for that).
    assert group["depends_on"] == ["terraform_data.delhi_web_image_saved"]
    saved = found["terraform_data"]["delhi_web_image_saved"]
    assert saved["triggers_replace"] == ["${e2e_image.delhi_web.id}"]
    assert "wait-image" in saved["provisioner"][0]["local-exec"]["command"]
    # The provider compares image names only up to their first "_": none may have one.
    assert "_" not in image["name"].replace(tag, "")
