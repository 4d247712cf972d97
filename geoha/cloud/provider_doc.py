"""docs/PROVIDER.md: the E2E provider's arguments as the provider schema table cites them.

`python -m geoha.cloud.provider_doc > docs/PROVIDER.md` (`make docs`) prints, from
`provider_schema.json`, the pin and what could be read, the status rule (the table's
`about`), and per resource a table: argument, required, type, status, source line,
why. tests/unit/test_provider_doc.py keeps the file in step with the table.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from geoha.cloud.schema import cited_tables, schema_table, walk_attributes

HEADER = """\
# The E2E Terraform provider, argument by argument

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
        "| resource | confirmed | unconfirmed (version) | unconfirmed (meaning) |",
        "|---|---|---|---|",
    ]
    for owner, attributes in tables.items():
        counts = Counter(_status(spec) for _, spec in walk_attributes(attributes))
        cells = ["confirmed", "unconfirmed (version)", "unconfirmed (meaning)"]
        lines.append(f"| `{owner}` | " + " | ".join(str(counts[c]) for c in cells) + " |")
    return lines


def _pin(provider: dict[str, Any]) -> list[str]:
    lines = [
        "## The pin",
        "",
        f"`{provider['source']}` version `{provider['version']}`: {provider['describes']}.",
        "",
    ]
    for title, key in (
        ("Why this version", "why_this_version"),
        ("What was read", "readable"),
        ("What could not be read", "not_readable"),
    ):
        lines += [f"{title}:", ""] + [f"- {item}" for item in provider[key]] + [""]
    return [*lines, f"To confirm the rest: {provider['to_confirm']}", ""]


def provider_reference() -> str:
    """The text of docs/PROVIDER.md."""
    table = schema_table()
    tables = cited_tables()
    lines = [HEADER]
    lines += _pin(table["providers"]["e2e"])
    lines += ["## Status", "", table["about"], "", *_summary(tables), ""]
    for owner, attributes in tables.items():
        title = 'provider "e2e"' if owner == "provider.e2e" else owner
        lines += [f"## {title}", "", *argument_table(attributes), ""]
        left_out = table["resources"].get(owner, {}).get("left_out", {})
        if left_out:
            lines += ["Left out on purpose (rendering one is an error):", ""]
            lines += [f"- `{name}`: {why}" for name, why in left_out.items()] + [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(provider_reference())
