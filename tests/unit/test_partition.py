"""Partition rules (pure) and the faults record: what is cut, what heal undoes."""

from __future__ import annotations

from pathlib import Path

import pytest

from geoha.runtime.faults import Faults, KilledRegion, load_faults, save_faults
from geoha.runtime.partition import (
    MARK_MASK,
    Cut,
    PartitionError,
    chain_name,
    cut_rules,
    mark_rules,
    region_marks,
)

REGIONS = ["delhi", "chennai", "mumbai"]
NETS = {"delhi": "127.10.0.0/16", "chennai": "127.20.0.0/16", "mumbai": "127.30.0.0/16"}
MARKS = region_marks(REGIONS)


def test_each_region_has_its_own_mark_inside_the_mask() -> None:
    assert MARKS == {"delhi": 0x10000, "chennai": 0x20000, "mumbai": 0x30000}
    assert all(mark & MARK_MASK == mark for mark in MARKS.values())
    with pytest.raises(PartitionError, match="at most 255 regions"):
        region_marks(f"r{i}" for i in range(256))


def test_new_connections_are_marked_by_the_group_that_opened_them() -> None:
    (delhi, chennai) = mark_rules({"delhi": 994, "chennai": 993}, MARKS)
    assert delhi == [
        *("-m", "conntrack", "--ctstate", "NEW"),
        *("-m", "owner", "--gid-owner", "994"),
        *("-m", "comment", "--comment", "geoha mark delhi"),
        *("-j", "CONNMARK", "--set-xmark", "0x10000/0xff0000"),
    ]
    assert "993" in chennai and "0x20000/0xff0000" in chennai


def test_a_cut_drops_connections_opened_either_way_and_nothing_else() -> None:
    rules = cut_rules(Cut("delhi", ("chennai", "mumbai")), NETS, MARKS)
    dropped = {(r[r.index("--mark") + 1], r[r.index("--ctorigdst") + 1]) for r in rules}
    assert dropped == {
        ("0x10000/0xff0000", "127.20.0.0/16"),  # delhi's processes -> chennai
        ("0x20000/0xff0000", "127.10.0.0/16"),  # chennai's processes -> delhi
        ("0x10000/0xff0000", "127.30.0.0/16"),
        ("0x30000/0xff0000", "127.10.0.0/16"),
    }
    assert all(r[-2:] == ["-j", "DROP"] for r in rules)
    # chennai <-> mumbai is not cut
    assert ("0x20000/0xff0000", "127.30.0.0/16") not in dropped


def test_chain_names_fit_iptables() -> None:
    assert chain_name("geoha") == "GEOHA-geoha"
    long = chain_name("a-very-long-deployment-name-indeed")
    assert len(long) <= 28 and long.startswith("GEOHA-a-very")
    assert long != chain_name("a-very-long-deployment-name-indeee")


def test_partitions_widen_and_heal_by_region(tmp_path: Path) -> None:
    faults = Faults().with_partition("delhi", ("chennai",)).with_partition("delhi", ("mumbai",))
    assert [(p.region, p.others) for p in faults.partitions] == [("delhi", ("chennai", "mumbai"))]
    faults = faults.with_partition("mumbai", ("chennai",))
    region_of = {"delhi-db": "delhi", "chennai-db": "chennai", "chennai-fe": "chennai"}
    killed = KilledRegion("chennai", ("chennai-db", "chennai-fe"), 5.0)
    faults = Faults(faults.partitions, (killed,), {"delhi-db": 7.0})

    left, mend, start = faults.healed("chennai", region_of)
    assert [p.region for p in mend] == ["delhi", "mumbai"]  # both touch chennai
    assert start == ["chennai-db", "chennai-fe"]
    assert left.partitions == () and left.killed_regions == ()
    assert left.killed_nodes == {"delhi-db": 7.0}  # delhi's kill is not chennai's to heal

    everything, _, start_all = faults.healed(None, region_of)
    assert everything.statuses() == [] and set(start_all) == {
        "chennai-db",
        "chennai-fe",
        "delhi-db",
    }

    save_faults(tmp_path, faults)
    assert (tmp_path / "faults.json").stat().st_mode & 0o777 == 0o600
    assert load_faults(tmp_path) == faults
    assert [(f["kind"], f["target"]) for f in faults.statuses()] == [
        ("partition", "delhi"),
        ("partition", "mumbai"),
        ("kill-region", "chennai"),
        ("kill-node", "delhi-db"),
    ]
    (tmp_path / "faults.json").write_text("{not json")
    assert load_faults(tmp_path) == Faults()
