"""docs/PROVIDER.md: every provider's arguments as the provider schema table cites them.

`python -m geoha.cloud.provider_doc > docs/PROVIDER.md` (`make docs`) prints, from
`provider_schema.json`, each provider's pin, status rule and what could be read, the
general status rule (the table's `about`), and per provider block, resource and data
source a table: argument, required, type, status, source line, why.
tests/unit/test_provider_doc.py keeps the file in step with the table.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from geoha.cloud.schema import cited_tables, provider_of, schema_table, walk_attributes

HEADER = """\
# The Terraform providers, argument by argument

Generated from `geoha/cloud/provider_schema.json` by `make docs`; do not edit by hand.
`geoha render terraform` checks what it renders against that table (docs/CLOUD.md,
"The provider schema table").
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link(cite: dict[str, Any]) -> str:
    name = cite["file"].rsplit("/", 1)[-1]
    where = cite["release"] or f"untagged {cite['commit'][:7]}"
    return f"[{name}#L{cite['line']}]({cite['url']}) ({where})"


def _kind(spec: dict[str, Any]) -> str:
    """The type and the provider's own checks (or the documented values)."""
    parts = [f"`{spec['type']}`"]
    if "allowed" in spec:
        parts.append("one of " + ", ".join(f"`{v}`" for v in spec["allowed"]))
    if "disallowed" in spec:
        parts.append("none of " + ", ".join(f"`{v}`" for v in spec["disallowed"]))
    if "pattern" in spec:
        parts.append(f"`{spec['pattern']}`")
    if "min" in spec or "max" in spec:
        parts.append(f"{spec.get('min', '')}..{spec.get('max', '')}")
    if "values_documented" in spec:
        documented = ", ".join(f"`{v}`" for v in spec["values_documented"])
        parts.append(f"documented: {documented}")
    return "; ".join(parts)


def _status(spec: dict[str, Any]) -> str:
    if spec["status"] == "confirmed":
        return "confirmed"
    return f"unconfirmed ({spec['doubt']})"


def _sources(spec: dict[str, Any]) -> str:
    cites = [_link(spec[key]) for key in ("source", "later") if key in spec]
    return "; later: ".join(cites) if cites else "none"


def _why(spec: dict[str, Any]) -> str:
    parts = [spec["why"].rstrip(".") + "."] if "why" in spec else []
    if "documented_by" in spec:
        parts.append(f"Documented values: {spec['documented_by']}.")
    if "note" in spec:
        parts.append(f"Note: {spec['note']}.")
    return " ".join(parts)


def argument_table(attributes: dict[str, Any]) -> list[str]:
    """One Markdown table row per argument, nested blocks' arguments by dotted name."""
    lines = [
        "| argument | required | type | status | source | why / note |",
        "|---|---|---|---|---|---|",
    ]
    for name, spec in walk_attributes(attributes):
        required = "yes" if spec.get("required") else "no"
        cells = [f"`{name}`", required, _kind(spec), _status(spec), _sources(spec), _why(spec)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _summary(tables: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| owner | confirmed | unconfirmed (version) | unconfirmed (meaning) |",
        "|---|---|---|---|",
    ]
    for owner, attributes in tables.items():
        counts = Counter(_status(spec) for _, spec in walk_attributes(attributes))
        cells = ["confirmed", "unconfirmed (version)", "unconfirmed (meaning)"]
        lines.append(f"| `{owner}` | " + " | ".join(str(counts[c]) for c in cells) + " |")
    return lines


def _pin(name: str, provider: dict[str, Any], meta: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"### {name}: `{provider['source']}` `{provider['version']}`",
        "",
        f"{provider['describes']}.",
        "",
        f"Status rule: {provider['status_rule']}",
        "",
    ]
    for title, key in (
        ("Why this version", "why_this_version"),
        ("What was read", "readable"),
        ("What could not be read", "not_readable"),
    ):
        if provider[key]:
            lines += [f"{title}:", ""] + [f"- {item}" for item in provider[key]] + [""]
    if "to_confirm" in provider:
        lines += [f"To confirm the rest: {provider['to_confirm']}", ""]
    if name == "terraform":
        links = ", ".join(_link(cite) for cite in meta)
        lines += [f"The meta-arguments geoha uses are Terraform's own: {links}.", ""]
    return lines


def owner_title(owner: str) -> str:
    """The heading of an owner of `cited_tables` (`provider "e2e"`, `data "external"`)."""
    for kind in ("provider", "data"):
        if owner.startswith(f"{kind}."):
            return f'{kind} "{owner.removeprefix(kind + ".")}"'
    return owner


def _owner_section(table: dict[str, Any], owner: str, attributes: dict[str, Any]) -> list[str]:
    """One provider block, resource or data source: its provider's pin and its arguments."""
    provider = table["providers"][provider_of(owner)]
    pin = f"Provider `{provider['source']}` `{provider['version']}`."
    lines = [f"## {owner_title(owner)}", "", pin, "", *argument_table(attributes), ""]
    section = "data_sources" if owner.startswith("data.") else "resources"
    left_out = table[section].get(owner.removeprefix("data."), {}).get("left_out", {})
    if left_out:
        lines += ["Left out on purpose (rendering one is an error):", ""]
        lines += [f"- `{name}`: {why}" for name, why in left_out.items()] + [""]
    return lines


def provider_reference() -> str:
    """The text of docs/PROVIDER.md."""
    table = schema_table()
    tables = cited_tables()
    lines = [HEADER, "## The pins", ""]
    for name, provider in table["providers"].items():
        lines += _pin(name, provider, table["meta_arguments_sources"])
    lines += ["## Status", "", table["about"], "", *_summary(tables), ""]
    for owner, attributes in tables.items():
        lines += _owner_section(table, owner, attributes)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(provider_reference())
