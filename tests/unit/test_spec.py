"""The topology file: defaults, a valid custom file, and one test per bad file."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from geoha import spec as spec_module
from geoha.spec import RegionRole, ReplicationMode, SpecError, load_spec, parse_spec

BAD_DIR = Path(__file__).parent / "bad_topologies"

# The dotted path the error must name for each bad file. `FILE` stands for the file's own path
# (a file that is not valid TOML has no dotted path inside it).
FILE = "<file>"
EXPECTED_PATH: dict[str, str] = {
    "unknown_top_level_key.toml": "replicaton",
    "unknown_nested_key.toml": "regions.delhi.api.autoscale.maxx",
    "invalid_toml.toml": FILE,
    "wrong_type_string_for_int.toml": "patroni.ttl_s",
    "wrong_type_quoted_number.toml": "patroni.ttl_s",
    "autoscale_max_above_20.toml": "regions.delhi.web.autoscale.max",
    "autoscale_min_above_desired.toml": "regions.delhi.api.autoscale.desired",
    "autoscale_desired_above_max.toml": "regions.chennai.api.autoscale.max",
    "scale_up_not_above_scale_down.toml": "regions.chennai.web.autoscale.scale_up_cpu_percent",
    "overlapping_cidrs.toml": "regions.chennai.cidr",
    "invalid_cidr.toml": "regions.chennai.cidr",
    "cidr_host_bits_set.toml": "regions.chennai.cidr",
    "cidr_smaller_than_16.toml": "regions.chennai.cidr",
    "no_primary.toml": "regions",
    "two_primaries.toml": "regions",
    "two_data_regions_no_witness.toml": "regions",
    "region_name_not_dns_safe.toml": "regions.Delhi_1",
    "cloud_location_with_spaces.toml": "regions.chennai.cloud.location",
    "external_data_region.toml": "regions.delhi.cloud.external",
    "aws_data_region.toml": "regions.chennai.cloud.provider",
    "aws_witness_without_region.toml": "regions.mumbai.cloud.location",
    "aws_witness_e2e_location.toml": "regions.mumbai.cloud.location",
    "instance_type_on_e2e.toml": "regions.mumbai.cloud.instance_type",
    "unknown_cloud_provider.toml": "regions.mumbai.cloud.provider",
    "etcd_plan_on_aws.toml": "regions.mumbai.cloud.etcd_plan",
    "deployment_name_not_dns_safe.toml": "name",
    "dns_weight_300.toml": "regions.delhi.dns.weight",
    "all_dns_weights_zero.toml": "regions",
    "short_password.toml": "database.app_password",
    "misspelled_password_key.toml": "database.app_pasword",
    "patroni_ttl_below_20.toml": "patroni.ttl_s",
    "patroni_timing_exceeds_ttl.toml": "patroni.ttl_s",
    "witness_with_web_tier.toml": "regions.mumbai.web",
    "replication_semi.toml": "replication",
    "database_port_equals_patroni_port.toml": "database.patroni_port",
    "etcd_ports_equal.toml": "etcd.peer_port",
    "etcd_health_port_on_database_port.toml": "etcd.health_port",
    "local_net_outside_loopback.toml": "regions.chennai.local_net",
    "loopback_nets_collide.toml": "regions.chennai.local_net",
    "unknown_region_role.toml": "regions.chennai.role",
}

# Secret values written in bad files: no error line may contain them.
SECRETS: dict[str, str] = {
    "short_password.toml": "Tr0ub4dor&3xyzq",
    "misspelled_password_key.toml": "c0rrect-horse-battery-staple",
}

BAD_FILES = sorted(EXPECTED_PATH)


def spec_errors(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    errors = info.value.errors
    assert errors, "SpecError without error lines"
    return errors


def write(tmp_path: Path, text: str, name: str = "geoha.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the bad files ------------------------------------------------------------------------


def test_every_bad_file_has_an_expected_path() -> None:
    on_disk = {p.name for p in BAD_DIR.glob("*.toml")}
    assert on_disk == set(EXPECTED_PATH)
    assert len(on_disk) >= 18


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_starts_with_a_comment(name: str) -> None:
    first = (BAD_DIR / name).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 10


@pytest.mark.parametrize("name", BAD_FILES, ids=[n.removesuffix(".toml") for n in BAD_FILES])
def test_bad_file_names_its_dotted_path(name: str) -> None:
    path = BAD_DIR / name
    expected = EXPECTED_PATH[name]
    if expected == FILE:
        expected = str(path)
    errors = spec_errors(path)
    assert any(line.startswith(expected + ":") for line in errors), errors
    assert len(errors) == 1, f"one fault, one line: {errors}"


# TOML syntax errors report line and column instead of a value (tested on their own).
VALUE_ERRORS = [n for n in BAD_FILES if EXPECTED_PATH[n] != FILE]


@pytest.mark.parametrize("name", VALUE_ERRORS, ids=[n.removesuffix(".toml") for n in VALUE_ERRORS])
def test_bad_file_error_shows_what_was_got(name: str) -> None:
    try:
        load_spec(BAD_DIR / name)
    except SpecError as exc:
        errors = exc.errors
    else:
        errors = []  # accepted: test_bad_file_names_its_dotted_path reports that
    for line in errors:
        assert re.fullmatch(r"[^\s:]+: .+\(got .+\)", line), line


def test_invalid_toml_reports_line_and_column() -> None:
    path = BAD_DIR / "invalid_toml.toml"
    (line,) = spec_errors(path)
    assert line.startswith(f"{path}: ")
    assert re.search(r"line 4, column \d+", line), line


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_secret_values_are_never_echoed(name: str) -> None:
    secret = SECRETS[name]
    assert secret in (BAD_DIR / name).read_text(encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(BAD_DIR / name)
    assert secret not in str(info.value)
    assert all(secret not in line for line in info.value.errors)


def test_short_password_reports_its_length_only() -> None:
    (line,) = spec_errors(BAD_DIR / "short_password.toml")
    assert line.startswith("database.app_password:")
    assert "16" in line and "15" in line


def test_several_field_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'replicaton = "sync"\n'
        'name = "Bad_Name"\n'
        "[patroni]\nttl_s = 19\n"
        '[database]\napp_password = "too-short"\n'
        "[dns]\nttl_s = 0\n",
    )
    errors = spec_errors(path)
    for expected in ("replicaton", "name", "patroni.ttl_s", "database.app_password", "dns.ttl_s"):
        assert any(line.startswith(expected + ":") for line in errors), (expected, errors)
    assert len(errors) == 5


def test_several_cross_field_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[patroni]\nloop_wait_s = 15\n[database]\nport = 8008\n[etcd]\npeer_port = 2379\n",
    )
    errors = spec_errors(path)
    for expected in ("patroni.ttl_s", "database.patroni_port", "etcd.peer_port"):
        assert any(line.startswith(expected + ":") for line in errors), (expected, errors)
    assert len(errors) == 3


def test_cross_field_rules_run_once_every_field_is_valid(tmp_path: Path) -> None:
    # Two passes, as documented in geoha/spec.py: every field error at once first;
    # rules that span fields need valid fields to compare, so they come next.
    path = write(tmp_path, 'replicaton = "sync"\n[patroni]\nloop_wait_s = 15\n')
    errors = spec_errors(path)
    assert [line.split(":")[0] for line in errors] == ["replicaton"], errors
    path = write(tmp_path, "[patroni]\nloop_wait_s = 15\n")
    errors = spec_errors(path)
    assert any(line.startswith("patroni.ttl_s:") for line in errors), errors


# --- the reference and valid files --------------------------------------------------------


def test_reference_spec() -> None:
    spec = load_spec(None)
    assert list(spec.regions) == ["delhi", "chennai", "mumbai"]
    assert spec.regions["delhi"].role is RegionRole.PRIMARY
    assert spec.regions["chennai"].role is RegionRole.REPLICA
    assert spec.regions["mumbai"].role is RegionRole.WITNESS
    assert spec.primary_region == "delhi"
    assert list(spec.data_regions) == ["delhi", "chennai"]
    assert [r.cidr for r in spec.regions.values()] == [
        "10.10.0.0/16",
        "10.20.0.0/16",
        "10.30.0.0/16",
    ]
    assert spec.replication is ReplicationMode.SYNC
    assert spec.automatic_failover is True
    assert (spec.patroni.ttl_s, spec.patroni.loop_wait_s, spec.patroni.retry_timeout_s) == (
        20,
        1,
        3,
    )
    for region in spec.data_regions.values():
        for tier in (region.web, region.api):
            scale = tier.autoscale
            assert (scale.min, scale.desired, scale.max) == (1, 2, 5)
            assert (scale.scale_up_cpu_percent, scale.scale_down_cpu_percent) == (70, 30)
    assert {n: r.dns.weight for n, r in spec.data_regions.items()} == {
        "delhi": 50,
        "chennai": 50,
    }
    assert spec.cross_field_errors() == []


def test_empty_file_is_the_reference(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, "")) == load_spec(None)
    assert load_spec(write(tmp_path, "# only a comment\n", "c.toml")) == load_spec(None)
    assert parse_spec({}) == load_spec(None)


VALID_CUSTOM = """
name = "shop-prod"
replication = "async"

[regions.delhi]
role = "primary"
cidr = "10.10.0.0/16"

[regions.delhi.api.autoscale]
min = 2
desired = 3
max = 20
scale_up_cpu_percent = 80
scale_down_cpu_percent = 20

[regions.chennai]
role = "replica"
cidr = "10.20.0.0/16"

[regions.chennai.dns]
weight = 0

[regions.hyderabad]
role = "replica"
cidr = "10.40.0.0/16"
local_net = "127.140.0.0/16"

[regions.mumbai]
role = "witness"
cidr = "10.30.0.0/16"

[patroni]
ttl_s = 30
loop_wait_s = 2
retry_timeout_s = 5

[database]
port = 6432
app_password = "a-long-enough-app-password"
"""


def test_valid_custom_file_loads(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID_CUSTOM))
    assert spec.name == "shop-prod"
    assert spec.replication is ReplicationMode.ASYNC
    assert list(spec.data_regions) == ["delhi", "chennai", "hyderabad"]
    assert spec.primary_region == "delhi"
    assert spec.regions["mumbai"].role is RegionRole.WITNESS
    api = spec.regions["delhi"].api.autoscale
    assert (api.min, api.desired, api.max) == (2, 3, 20)
    assert spec.regions["delhi"].web.autoscale.max == 5
    assert spec.regions["chennai"].dns.weight == 0
    assert str(spec.regions["hyderabad"].loopback_net) == "127.140.0.0/16"
    assert str(spec.regions["chennai"].loopback_net) == "127.20.0.0/16"
    assert spec.patroni.ttl_s == 30
    assert spec.database.port == 6432
    assert spec.database.app_password == "a-long-enough-app-password"


def test_three_data_regions_need_no_witness(tmp_path: Path) -> None:
    text = "".join(
        f'[regions.{name}]\nrole = "{role}"\ncidr = "10.{octet}.0.0/16"\n'
        for name, role, octet in (
            ("delhi", "primary", 10),
            ("chennai", "replica", 20),
            ("pune", "replica", 40),
        )
    )
    assert list(load_spec(write(tmp_path, text)).data_regions) == ["delhi", "chennai", "pune"]


def test_two_data_regions_without_failover_need_no_witness(tmp_path: Path) -> None:
    text = (
        "automatic_failover = false\n"
        '[regions.delhi]\nrole = "primary"\ncidr = "10.10.0.0/16"\n'
        '[regions.chennai]\nrole = "replica"\ncidr = "10.20.0.0/16"\n'
    )
    assert load_spec(write(tmp_path, text)).automatic_failover is False


# --- unreadable files ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    (line,) = spec_errors(path)
    assert line.startswith(f"{path}: ")
    assert "no such file" in line


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (line,) = spec_errors(tmp_path)
    assert line.startswith(f"{tmp_path}: ")
    assert "directory" in line


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    (line,) = spec_errors(path)
    assert line.startswith(f"{path}: ")
    assert "UTF-8" in line


# --- documentation ------------------------------------------------------------------------


def spec_models() -> list[type[BaseModel]]:
    return [
        cls
        for _, cls in inspect.getmembers(spec_module, inspect.isclass)
        if issubclass(cls, BaseModel) and cls.__module__ == spec_module.__name__
    ]


def test_models_are_found() -> None:
    names = {cls.__name__ for cls in spec_models()}
    assert {"Spec", "Region", "Tier", "Autoscale", "RegionDns", "Patroni"} <= names
    assert {"Database", "Etcd", "Dns"} <= names


def test_every_field_has_a_description() -> None:
    missing = [
        f"{cls.__name__}.{name}"
        for cls in spec_models()
        for name, info in cls.model_fields.items()
        if not (info.description and info.description.strip())
    ]
    assert missing == []
