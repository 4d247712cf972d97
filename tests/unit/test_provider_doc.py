from __future__ import annotations

from pathlib import Path

from geoha.cloud.provider_doc import owner_title, provider_reference
from geoha.cloud.schema import cited_tables, walk_attributes

DOC = Path(__file__).parent.parent.parent / "docs" / "PROVIDER.md"


def test_provider_reference_is_up_to_date() -> None:
    assert DOC.read_text() == provider_reference(), "docs/PROVIDER.md is stale: run `make docs`"


def test_reference_lists_every_cited_argument_with_its_status() -> None:
    text = provider_reference()
    for owner, attributes in cited_tables().items():
        assert f"## {owner_title(owner)}\n" in text
        for name, spec in walk_attributes(attributes):
            assert f"| `{name}` | {'yes' if spec.get('required') else 'no'} |" in text, name
    for pin in ("`2.2.7`", "`5.100.0`", "`2.4.0`", "`>= 1.4`"):
        assert pin in text
