"""The DNS server's pure logic: Route 53 weighted choice, health-check states, answers."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, DNSQuestion, DNSRecord

from geoha.commands.dns import health_word
from geoha.runtime.global_dns import DnsRecordStatus
from geoha.traffic.dns import (
    EDNS_PAYLOAD_MAX,
    TCP_MAX,
    Answer,
    CheckState,
    HealthChange,
    WeightedRecord,
    ZoneConfig,
    after_check,
    answer,
    check_records,
    choose_record,
    health_change,
)

ZONE = ZoneConfig(zone="geoha.test", name="app.geoha.test", ttl_s=30, ns_address="127.0.53.1")
DELHI = WeightedRecord("delhi", "delhi", "127.10.1.1", 50)
CHENNAI = WeightedRecord("chennai", "chennai", "127.20.1.1", 50)
RECORDS = (DELHI, CHENNAI)
DOWN = CheckState(healthy=False, consecutive_failures=3)
DECISIONS = 10_000


def records(**weights: int) -> list[WeightedRecord]:
    return [
        WeightedRecord(region, region, f"127.{10 * (i + 1)}.1.1", weight)
        for i, (region, weight) in enumerate(weights.items())
    ]


def shares(
    records: Sequence[WeightedRecord],
    health: Mapping[str, CheckState] | None = None,
    seed: int = 1,
) -> dict[str, float]:
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    for _ in range(DECISIONS):
        chosen = choose_record(records, health or {}, rng)
        assert chosen is not None
        counts[chosen.region] += 1
    return {region: count / DECISIONS for region, count in counts.items()}


# -- weighted choice ---------------------------------------------------------------------------


@pytest.mark.parametrize(("delhi", "chennai"), [(50, 50), (80, 20), (1, 1), (255, 85)])
def test_choice_follows_the_weights(delhi: int, chennai: int) -> None:
    got = shares(records(delhi=delhi, chennai=chennai))
    assert got["delhi"] == pytest.approx(delhi / (delhi + chennai), abs=0.03)
    assert got["chennai"] == pytest.approx(chennai / (delhi + chennai), abs=0.03)


def test_weight_zero_is_never_chosen_while_a_healthy_record_weighs_more() -> None:
    got = shares(records(delhi=0, chennai=1, mumbai=0))
    assert got == {"chennai": 1.0}


def test_all_zero_weights_share_equally() -> None:
    got = shares(records(delhi=0, chennai=0, mumbai=0))
    for region in ("delhi", "chennai", "mumbai"):
        assert got[region] == pytest.approx(1 / 3, abs=0.03)


def test_unhealthy_regions_are_left_out() -> None:
    got = shares(records(delhi=80, chennai=20, mumbai=50), {"delhi": DOWN})
    assert got.keys() == {"chennai", "mumbai"}
    assert got["chennai"] == pytest.approx(20 / 70, abs=0.03)


def test_zero_weight_records_serve_when_every_weighted_one_is_unhealthy() -> None:
    got = shares(records(delhi=80, chennai=0, mumbai=0), {"delhi": DOWN})
    assert got["chennai"] == pytest.approx(0.5, abs=0.03)
    assert "delhi" not in got


def test_fail_open_when_every_region_is_unhealthy() -> None:
    got = shares(records(delhi=80, chennai=20), {"delhi": DOWN, "chennai": DOWN})
    assert got["delhi"] == pytest.approx(0.8, abs=0.03)
    assert got["chennai"] == pytest.approx(0.2, abs=0.03)


def test_a_region_without_a_check_yet_counts_as_healthy() -> None:
    got = shares(records(delhi=50, chennai=50), {"delhi": DOWN})
    assert got == {"chennai": 1.0}


def test_no_records_no_choice() -> None:
    assert choose_record([], {}, random.Random(1)) is None


def test_the_choice_is_the_injected_generators() -> None:
    picks = [choose_record(RECORDS, {}, random.Random(7)) for _ in range(5)]
    assert len(set(picks)) == 1


def test_records_are_validated() -> None:
    with pytest.raises(ValueError, match="weight 256 is not in 0-255"):
        WeightedRecord("delhi", "delhi", "127.10.1.1", 256)
    with pytest.raises(ValueError, match="weight -1"):
        WeightedRecord("delhi", "delhi", "127.10.1.1", -1)
    with pytest.raises(ValueError, match=r"'10\.1\.1' is not an IPv4 address"):
        WeightedRecord("delhi", "delhi", "10.1.1", 1)
    with pytest.raises(ValueError, match=r"region 'Delhi\.x' is not a lowercase DNS label"):
        WeightedRecord("delhi", "Delhi.x", "127.10.1.1", 1)
    with pytest.raises(ValueError, match="set id 'delhi' is used twice"):
        check_records([DELHI, WeightedRecord("delhi", "chennai", "127.20.1.1", 1)])
    assert check_records([DELHI, CHENNAI]) == RECORDS


# -- health-check states -----------------------------------------------------------------------


def run_checks(outcomes: str, threshold: int = 3, state: CheckState | None = None) -> CheckState:
    """Feed checks ("p" passed, "f" failed) from `state` (a new check by default)."""
    state = state or CheckState()
    for outcome in outcomes:
        state = after_check(state, outcome == "p", threshold)
    return state


def test_a_new_check_starts_healthy() -> None:
    assert CheckState() == CheckState(healthy=True, consecutive_failures=0, consecutive_successes=0)


@pytest.mark.parametrize("threshold", [1, 2, 3, 5])
def test_unhealthy_after_exactly_threshold_failures(threshold: int) -> None:
    assert run_checks("f" * (threshold - 1), threshold).healthy
    assert not run_checks("f" * threshold, threshold).healthy
    assert run_checks("f" * threshold, threshold).consecutive_failures == threshold


@pytest.mark.parametrize("threshold", [1, 2, 3, 5])
def test_healthy_again_after_exactly_threshold_successes(threshold: int) -> None:
    down = run_checks("f" * threshold, threshold)
    assert not run_checks("p" * (threshold - 1), threshold, down).healthy
    assert run_checks("p" * threshold, threshold, down).healthy


def test_a_success_in_between_resets_the_failures() -> None:
    assert run_checks("ffpff").healthy
    assert run_checks("ffpff").consecutive_failures == 2
    assert not run_checks("ffpfff").healthy


def test_a_failure_in_between_resets_the_successes() -> None:
    down = run_checks("fff")
    assert not run_checks("ppfpp", state=down).healthy
    assert run_checks("ppfppp", state=down).healthy


def test_passing_checks_keep_a_healthy_region_healthy() -> None:
    assert run_checks("pppppp") == CheckState(True, 0, 6)


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="failure_threshold 0"):
        after_check(CheckState(), True, 0)


def test_health_change_says_what_turned_and_why() -> None:
    before = run_checks("ff")
    after = after_check(before, False, 3)
    change = health_change("delhi", before, after, "connection refused")
    assert change == HealthChange("delhi", False, 3, "connection refused")
    sentence = "dns: delhi unhealthy after 3 failed checks (last: connection refused)"
    assert change.sentence() == sentence
    back = health_change("delhi", run_checks("fffpp"), run_checks("fffppp"), "answered 200")
    assert back is not None
    assert back.sentence() == "dns: delhi healthy again after 3 passed checks"
    assert HealthChange("x", False, 1, "").sentence() == "dns: x unhealthy after 1 failed check"
    assert health_change("delhi", CheckState(), run_checks("f"), "refused") is None


# -- answers -----------------------------------------------------------------------------------


def ask(
    qname: str,
    qtype: str = "A",
    zone: ZoneConfig = ZONE,
    records: Sequence[WeightedRecord] = RECORDS,
    health: Mapping[str, CheckState] | None = None,
    **kwargs: int,
) -> tuple[Answer, DNSRecord]:
    query = DNSRecord.question(qname, qtype)
    return ask_packet(query.pack(), zone, records, health, **kwargs)


def ask_packet(
    packet: bytes,
    zone: ZoneConfig = ZONE,
    records: Sequence[WeightedRecord] = RECORDS,
    health: Mapping[str, CheckState] | None = None,
    **kwargs: int,
) -> tuple[Answer, DNSRecord]:
    result = answer(packet, zone, records, health or {}, random.Random(1), **kwargs)
    assert result is not None
    response = DNSRecord.parse(result.wire)
    assert response.header.id == DNSRecord.parse(packet).header.id
    assert response.header.qr == 1
    assert response.header.ra == 0
    return result, response


def rcode(response: DNSRecord) -> str:
    return str(RCODE.get(response.header.rcode))


def test_a_query_for_the_application_gets_one_weighted_record() -> None:
    result, response = ask("app.geoha.test")
    assert rcode(response) == "NOERROR"
    assert response.header.aa == 1
    (rr,) = response.rr
    assert (str(rr.rname), rr.rtype, rr.ttl) == ("app.geoha.test.", QTYPE.A, 30)
    assert result.record is not None
    assert str(rr.rdata) == result.record.address
    assert result.region == result.record.region
    assert (result.qname, result.qtype, result.rcode) == ("app.geoha.test", "A", "NOERROR")


def test_the_answer_follows_health() -> None:
    for seed in range(20):
        result = answer(
            DNSRecord.question("app.geoha.test").pack(),
            ZONE,
            RECORDS,
            {"delhi": DOWN},
            random.Random(seed),
        )
        assert result is not None
        assert result.region == "chennai"


def test_names_are_case_insensitive() -> None:
    result, response = ask("APP.Geoha.TEST.")
    assert rcode(response) == "NOERROR"
    assert result.region is not None
    assert str(response.rr[0].rname) == "APP.Geoha.TEST."  # the owner as the client spelled it


def test_soa_at_the_apex() -> None:
    _, response = ask("geoha.test", "SOA")
    assert rcode(response) == "NOERROR"
    assert response.header.aa == 1
    (rr,) = response.rr
    assert rr.rtype == QTYPE.SOA
    assert str(rr.rdata.mname) == "ns1.geoha.test."
    assert str(rr.rdata.rname) == "hostmaster.geoha.test."
    assert rr.rdata.times == (1, 7200, 900, 1209600, 60)


def test_ns_at_the_apex_with_the_name_servers_address() -> None:
    _, response = ask("geoha.test", "NS")
    (ns,) = response.rr
    assert (ns.rtype, str(ns.rdata)) == (QTYPE.NS, "ns1.geoha.test.")
    (glue,) = response.ar
    assert (str(glue.rname), str(glue.rdata)) == ("ns1.geoha.test.", "127.0.53.1")
    _, response = ask("ns1.geoha.test", "A")
    assert [str(rr.rdata) for rr in response.rr] == ["127.0.53.1"]


def test_an_unknown_name_in_the_zone_is_nxdomain_with_the_soa() -> None:
    result, response = ask("nope.geoha.test")
    assert rcode(response) == "NXDOMAIN"
    assert response.header.aa == 1
    assert response.rr == []
    (soa,) = response.auth
    assert (str(soa.rname), soa.rtype, soa.ttl) == ("geoha.test.", QTYPE.SOA, 60)
    assert (result.rcode, result.record) == ("NXDOMAIN", None)
    assert rcode(ask("x.app.geoha.test")[1]) == "NXDOMAIN"


def test_a_name_outside_the_zone_is_refused() -> None:
    for name in ("example.com", "test", "notgeoha.test", "."):
        _, response = ask(name)
        assert rcode(response) == "REFUSED", name
        assert response.header.aa == 0
        assert response.rr == response.auth == []


def test_other_types_of_an_existing_name_are_empty_noerror() -> None:
    for qtype in ("AAAA", "MX", "TXT", "CNAME"):
        result, response = ask("app.geoha.test", qtype)
        assert rcode(response) == "NOERROR", qtype
        assert response.rr == []
        assert [rr.rtype for rr in response.auth] == [QTYPE.SOA]
        assert result.record is None
    assert ask("geoha.test", "A")[1].rr == []  # the apex has no A unless it is the name


def test_region_names_answer_their_entry() -> None:
    _, response = ask("delhi.geoha.test")
    assert [str(rr.rdata) for rr in response.rr] == ["127.10.1.1"]
    _, response = ask("delhi.geoha.test", health={"delhi": DOWN})
    assert [str(rr.rdata) for rr in response.rr] == ["127.10.1.1"]  # not health checked
    assert rcode(ask("mumbai.geoha.test")[1]) == "NXDOMAIN"


def test_the_application_may_live_at_the_apex() -> None:
    apex = ZoneConfig(zone="geoha.test", name="geoha.test", ttl_s=10, ns_address="127.0.53.1")
    result, response = ask("geoha.test", zone=apex)
    assert result.region is not None
    assert [rr.ttl for rr in response.rr] == [10]
    assert [rr.rtype for rr in ask("geoha.test", "SOA", zone=apex)[1].rr] == [QTYPE.SOA]


def test_names_between_an_owner_and_the_apex_exist() -> None:
    deep = ZoneConfig(zone="geoha.test", name="app.eu.geoha.test", ttl_s=10, ns_address="127.0.0.9")
    _, response = ask("eu.geoha.test", zone=deep)
    assert rcode(response) == "NOERROR"
    assert response.rr == []
    assert rcode(ask("app.eu.geoha.test", zone=deep)[1]) == "NOERROR"


def test_no_records_leaves_the_name_without_an_answer() -> None:
    result, response = ask("app.geoha.test", records=())
    assert rcode(response) == "NOERROR"
    assert response.rr == []
    assert result.record is None


def test_any_gets_what_the_name_has() -> None:
    _, response = ask("geoha.test", "ANY")
    assert sorted(rr.rtype for rr in response.rr) == sorted([QTYPE.SOA, QTYPE.NS])
    _, response = ask("app.geoha.test", "ANY")
    assert [rr.rtype for rr in response.rr] == [QTYPE.A]


def test_other_opcodes_are_not_implemented() -> None:
    query = DNSRecord.question("app.geoha.test")
    query.header.opcode = OPCODE.UPDATE
    _, response = ask_packet(query.pack())
    assert rcode(response) == "NOTIMP"
    assert response.rr == []


def test_more_or_fewer_than_one_question_is_a_format_error() -> None:
    query = DNSRecord.question("app.geoha.test")
    query.add_question(DNSQuestion("geoha.test", QTYPE.SOA))
    result, response = ask_packet(query.pack())
    assert rcode(response) == "FORMERR"
    assert result.qname == ""
    query.questions = []
    assert rcode(ask_packet(query.pack())[1]) == "FORMERR"


def test_a_class_other_than_in_is_refused() -> None:
    query = DNSRecord.question("app.geoha.test", "TXT", "CH")
    assert query.questions[0].qclass == CLASS.CH
    assert rcode(ask_packet(query.pack())[1]) == "REFUSED"


def test_a_response_is_never_answered() -> None:
    query = DNSRecord.question("app.geoha.test")
    query.header.qr = 1
    assert answer(query.pack(), ZONE, RECORDS, {}, random.Random(1)) is None


def with_edns(query: DNSRecord, udp_len: int = 4096, version: int = 0) -> bytes:
    query.add_ar(EDNS0(udp_len=udp_len, version=version))
    packet: bytes = query.pack()
    return packet


def test_edns_is_answered_with_edns() -> None:
    _, response = ask_packet(with_edns(DNSRecord.question("app.geoha.test")))
    (opt,) = response.ar
    assert (opt.rtype, opt.rclass) == (QTYPE.OPT, EDNS_PAYLOAD_MAX)
    assert len(response.rr) == 1


def test_an_unknown_edns_version_is_badvers() -> None:
    result, response = ask_packet(with_edns(DNSRecord.question("app.geoha.test"), version=1))
    (opt,) = response.ar
    assert (response.header.rcode, opt.ttl >> 24) == (0, 1)  # extended rcode 16 = 1 << 4 | 0
    assert result.rcode == "BADVERS"
    assert response.rr == []


def test_two_opt_records_are_a_format_error() -> None:
    query = DNSRecord.question("app.geoha.test")
    query.add_ar(EDNS0(udp_len=1232))
    assert rcode(ask_packet(with_edns(query))[1]) == "FORMERR"


def test_an_oversize_response_is_truncated_to_its_question() -> None:
    full = ask("geoha.test", "NS")[0].wire
    result, response = ask("geoha.test", "NS", max_size=len(full) - 1)
    assert len(result.wire) < len(full)
    assert response.header.tc == 1
    assert [str(q.qname) for q in response.questions] == ["geoha.test."]
    assert response.rr == response.auth == response.ar == []
    result, response = ask("geoha.test", "NS", max_size=len(full))
    assert (response.header.tc, len(result.wire)) == (0, len(full))
    assert isinstance(result.wire, bytes)


def test_a_limit_below_the_question_leaves_the_header() -> None:
    result, response = ask("app.geoha.test", max_size=12)
    assert len(result.wire) == 12
    assert response.header.tc == 1


def test_edns_raises_the_udp_limit_up_to_the_servers_payload() -> None:
    query = DNSRecord.question("geoha.test", "NS")
    _, response = ask_packet(with_edns(query, udp_len=4096), max_size=40)
    assert response.header.tc == 0  # the client's 4096, capped at 1232, beats 40
    query = DNSRecord.question("geoha.test", "NS")
    _, response = ask_packet(with_edns(query, udp_len=40), max_size=TCP_MAX)
    assert response.header.tc == 0  # a small EDNS size does not lower the TCP limit


def test_zone_config_defaults_and_validation() -> None:
    zone = ZoneConfig(zone="Geoha.Test.", name="App.geoha.test", ttl_s=5, ns_address="127.0.0.2")
    assert (zone.zone, zone.name) == ("geoha.test", "app.geoha.test")
    assert zone.ns_name == "ns1.geoha.test"
    with pytest.raises(ValueError, match=r"name 'app\.example\.com' is not inside zone"):
        ZoneConfig(zone="geoha.test", name="app.example.com", ttl_s=5, ns_address="127.0.0.2")
    with pytest.raises(ValueError, match=r"ns_name 'ns\.other\.test' is not inside"):
        ZoneConfig(
            zone="geoha.test",
            name="geoha.test",
            ttl_s=5,
            ns_address="127.0.0.2",
            ns_name="ns.other.test",
        )
    with pytest.raises(ValueError, match="ns_address 'localhost' is not an IPv4 address"):
        ZoneConfig(zone="geoha.test", name="geoha.test", ttl_s=5, ns_address="localhost")
    with pytest.raises(ValueError, match=r"zone 'geoha\.\.test' is not a domain name"):
        ZoneConfig(zone="geoha..test", name="", ttl_s=5, ns_address="127.0.0.2")
    with pytest.raises(ValueError, match="ttl_s -1"):
        ZoneConfig(zone="geoha.test", name="geoha.test", ttl_s=-1, ns_address="127.0.0.2")


# -- fuzz --------------------------------------------------------------------------------------


def check_survives(packet: bytes, rng: random.Random) -> Answer | None:
    """answer() on any bytes: None, or a response dnslib can read back."""
    result = answer(packet, ZONE, RECORDS, {}, rng, max_size=rng.choice([512, TCP_MAX]))
    if result is not None:
        response = DNSRecord.parse(result.wire)
        assert response.header.qr == 1
        assert len(result.wire) <= TCP_MAX
    return result


def test_random_bytes_never_raise() -> None:
    rng = random.Random(2024)
    for _ in range(5000):
        packet = rng.randbytes(rng.choice([0, 1, 11, 12, 13, 20, 40, 100, 600]))
        check_survives(packet, rng)


def mutate(packet: bytes, rng: random.Random) -> bytes:
    data = bytearray(packet)
    match rng.randrange(4):
        case 0:  # flip bytes
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        case 1:  # cut short
            del data[rng.randrange(len(data)) :]
        case 2:  # insert bytes
            position = rng.randrange(len(data) + 1)
            data[position:position] = rng.randbytes(rng.randint(1, 8))
        case _:  # a label length or pointer byte where the name starts
            data[12] = rng.choice([0x3F, 0x40, 0xC0, 0xFF])
    return bytes(data)


def test_mutated_queries_never_raise() -> None:
    rng = random.Random(7)
    valid = [
        DNSRecord.question("app.geoha.test").pack(),
        DNSRecord.question("geoha.test", "NS").pack(),
        DNSRecord.question("nope.geoha.test", "AAAA").pack(),
        with_edns(DNSRecord.question("app.geoha.test")),
    ]
    outcomes: Counter[str] = Counter()
    for _ in range(5000):
        result = check_survives(mutate(rng.choice(valid), rng), rng)
        outcomes["dropped" if result is None else result.rcode] += 1
    assert outcomes["dropped"] > 0
    assert outcomes["NOERROR"] > 0


def test_the_dns_table_says_when_a_region_is_still_adding_up_passes() -> None:
    def record(healthy: bool, fails: int, passes: int) -> DnsRecordStatus:
        return {
            "region": "delhi",
            "set_id": "delhi",
            "address": "127.10.1.1",
            "weight": 50,
            "healthy": healthy,
            "consecutive_failures": fails,
            "consecutive_successes": passes,
            "last_check": None,
            "answers": 0,
        }

    assert health_word(record(True, 0, 7), 3) == "yes"
    assert health_word(record(False, 0, 1), 3) == "not yet (1/3 passes)"
    assert health_word(record(False, 0, 0), 3) == "NO"  # nothing checked yet
    assert health_word(record(False, 2, 0), 3) == "NO"
