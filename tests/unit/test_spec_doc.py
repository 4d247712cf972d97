from __future__ import annotations

from pathlib import Path

from geoha.spec_doc import topology_reference

DOC = Path(__file__).parent.parent.parent / "docs" / "TOPOLOGY.md"


def test_topology_reference_is_up_to_date() -> None:
    assert DOC.read_text() == topology_reference(), "docs/TOPOLOGY.md is stale: run `make docs`"


def test_reference_documents_every_section_with_units() -> None:
    text = topology_reference()
    for section in (
        "`patroni`",
        "`database`",
        "`etcd`",
        "`dns`",
        "`regions.NAME`",
        "`regions.NAME.api.autoscale`",
        "`regions.NAME.dns`",
    ):
        assert f"## {section}" in text, section
    assert "| `ttl_s` | int | 20 |" in text
    assert "| `scale_up_cpu_percent` | float | 70.0 |" in text
