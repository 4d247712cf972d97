"""The provider schema table (`provider_schema.json`) and a checker for rendered Terraform JSON.

The table records, for every resource type, data source and provider block geoha
renders, each argument: required or optional, type, allowed values or range, the
source line that declares it and a status (the rule is in the table's `about` and
each provider's `status_rule`; docs/PROVIDER.md prints it all). `check_document` walks a Terraform
JSON document and reports every resource (and provider block) that does not
conform: an unknown argument, a missing required one, a value of the wrong type
or out of range (errors); the use of an argument whose meaning no source settles,
or of a value outside the documented ones (warnings); and the use of an argument
declared in the provider's source but not shown to be in the pinned release
(notes). Values that are Terraform expressions (`${...}`) are only checked for
presence.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "provider_schema.json"


class Severity(StrEnum):
    ERROR = "error"  # the provider would refuse it, or the table says it is wrong
    WARNING = "warning"  # relies on a meaning or value no source settles
    NOTE = "note"  # in the provider's source, but not shown to be in the pinned release


class Doubt(StrEnum):
    """Why an argument the table marks `"status": "unconfirmed"` is so."""

    VERSION = "version"  # declared in a source that nothing ties to the pinned version
    MEANING = "meaning"  # in no source, or the source leaves open what geoha relies on


DOUBT_SEVERITY = {Doubt.VERSION: Severity.NOTE, Doubt.MEANING: Severity.WARNING}


@dataclass(frozen=True)
class Problem:
    """One non-conformity, located by a dotted path (`e2e_node.delhi_db.location`)."""

    severity: Severity
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.path}: {self.message}"


@cache
def schema_table() -> dict[str, Any]:
    """The table as stored in the package (see its `about` and `providers` for sources)."""
    text = resources.files("geoha.cloud").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "map(string)":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    match = re.fullmatch(r"(list|set)\((\w+)\)", kind)
    if match:
        inner = match.group(2)
        return isinstance(value, list) and all(
            is_expression(v) or _type_ok(inner, v) for v in value
        )
    raise ValueError(f"unknown type {kind!r} in {SCHEMA_FILE}")


def _value_problems(spec: dict[str, Any], value: Any, path: str) -> list[Problem]:
    """Type, range, pattern and allowed-value checks of one literal argument."""
    if not _type_ok(spec["type"], value):
        return [Problem(Severity.ERROR, path, f"expected {spec['type']} (got {value!r})")]
    problems: list[Problem] = []
    low, high = spec.get("min"), spec.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        problems.append(Problem(Severity.ERROR, path, f"expected {low}..{high} (got {value})"))
    if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
        problems.append(
            Problem(Severity.ERROR, path, f"expected to match {spec['pattern']} (got {value!r})")
        )
    if spec.get("format") == "cidr":
        try:
            ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            problems.append(Problem(Severity.ERROR, path, f"expected a CIDR (got {value!r})"))
    if "allowed" in spec and value not in spec["allowed"]:
        message = f"expected one of {spec['allowed']} (got {value!r})"
        problems.append(Problem(Severity.ERROR, path, message))
    if "disallowed" in spec and value in spec["disallowed"]:
        message = f"expected none of {spec['disallowed']} (got {value!r})"
        problems.append(Problem(Severity.ERROR, path, message))
    if "values_documented" in spec and value not in spec["values_documented"]:
        message = (
            f"expected one of {spec['values_documented']} (got {value!r}), which the provider "
            f"does not check: {spec['documented_by']}"
        )
        problems.append(Problem(Severity.WARNING, path, message))
    return problems


def _argument_problems(spec: dict[str, Any], value: Any, path: str) -> list[Problem]:
    problems: list[Problem] = []
    if spec.get("status") == "unconfirmed":
        doubt = Doubt(spec["doubt"])
        message = f"unconfirmed ({doubt.value}): {spec['why']}"
        problems.append(Problem(DOUBT_SEVERITY[doubt], path, message))
    if spec["type"] == "block":
        blocks = value if isinstance(value, list) else [value]
        for i, block in enumerate(blocks):
            if not isinstance(block, dict):
                problems.append(Problem(Severity.ERROR, f"{path}[{i}]", "expected a block"))
                continue
            problems += check_arguments(spec["attributes"], block, f"{path}[{i}]")
        return problems
    if is_expression(value):
        return problems
    return problems + _value_problems(spec, value, path)


def check_arguments(
    attributes: dict[str, Any], body: dict[str, Any], path: str, meta: frozenset[str] = frozenset()
) -> list[Problem]:
    """Problems of one resource body (or nested block) against its attribute table."""
    problems: list[Problem] = []
    for name, value in body.items():
        if name in meta:
            continue
        spec = attributes.get(name)
        if spec is None:
            problems.append(Problem(Severity.ERROR, f"{path}.{name}", "unknown argument"))
            continue
        problems += _argument_problems(spec, value, f"{path}.{name}")
    for name, spec in attributes.items():
        if spec.get("required") and name not in body:
            problems.append(Problem(Severity.ERROR, f"{path}.{name}", "required argument missing"))
    return problems


SECTIONS = {"resource": "resources", "data": "data_sources"}
"""Terraform JSON section -> the table's section describing it."""


def check_document(document: dict[str, Any]) -> list[Problem]:
    """Every problem of every resource and data source of a Terraform JSON document.

    Data sources are located as `data.TYPE.NAME`, resources as `TYPE.NAME`, provider
    blocks as `provider.NAME` (checked when the table lists the provider's `arguments`),
    or `provider.NAME[i]` where several configure one provider (each but one with an
    `alias`).
    """
    table = schema_table()
    meta = frozenset(table["meta_arguments"])
    provider_meta = frozenset(table["provider_meta_arguments"])
    problems: list[Problem] = []
    for name, bodies in document.get("provider", {}).items():
        arguments = table["providers"].get(name, {}).get("arguments")
        if arguments is None:
            continue
        if not isinstance(bodies, list):
            problems += check_arguments(arguments, bodies, f"provider.{name}", provider_meta)
            continue
        aliases: set[str | None] = set()
        for i, body in enumerate(bodies):
            path = f"provider.{name}[{i}]"
            problems += check_arguments(arguments, body, path, provider_meta)
            alias = body.get("alias")
            if alias in aliases:
                taken = f"alias {alias!r}" if alias else "no alias"
                problems.append(Problem(Severity.ERROR, path, f"another block has {taken}"))
            aliases.add(alias)
    for section, table_section in SECTIONS.items():
        prefix = "data." if section == "data" else ""
        for rtype, instances in document.get(section, {}).items():
            entry = table[table_section].get(rtype)
            if entry is None:
                problems.append(
                    Problem(Severity.ERROR, f"{prefix}{rtype}", "type not in the table")
                )
                continue
            for rname, body in instances.items():
                path = f"{prefix}{rtype}.{rname}"
                problems += check_arguments(entry["attributes"], body, path, meta)
    return problems


def walk_attributes(attributes: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every argument of an attribute table, nested blocks' arguments included, with its
    dotted name (`rules`, `rules.size`)."""
    for name, spec in attributes.items():
        yield f"{prefix}{name}", spec
        if spec["type"] == "block":
            yield from walk_attributes(spec["attributes"], f"{prefix}{name}.")


def cited_tables() -> dict[str, dict[str, Any]]:
    """Every attribute table of the table, by owner: `provider.NAME` (a provider block
    with `arguments`), `TYPE` (a resource type) and `data.TYPE` (a data source)."""
    table = schema_table()
    tables = {
        f"provider.{name}": provider["arguments"]
        for name, provider in table["providers"].items()
        if "arguments" in provider
    }
    tables |= {rtype: entry["attributes"] for rtype, entry in table["resources"].items()}
    tables |= {
        f"data.{dtype}": entry["attributes"] for dtype, entry in table["data_sources"].items()
    }
    return tables


def provider_of(owner: str) -> str:
    """The provider (a key of the table's `providers`) an owner of `cited_tables` belongs
    to: Terraform's rule, the type name up to its first underscore (`terraform_data` is
    the built-in `terraform` provider's)."""
    if owner.startswith("provider."):
        return owner.removeprefix("provider.")
    return owner.removeprefix("data.").split("_")[0]


def unconfirmed_entries() -> list[str]:
    """`owner.argument` of every entry the table marks unconfirmed, or whose values are
    only documented (`provider.e2e.api_key`, `e2e_node.location (documented values)`)."""
    table = schema_table()
    owners = {
        f"provider.{name}": provider["arguments"]
        for name, provider in table["providers"].items()
        if "arguments" in provider
    }
    for section in SECTIONS.values():
        owners |= {rtype: entry["attributes"] for rtype, entry in table[section].items()}
    found: list[str] = []
    for owner, attributes in owners.items():
        for name, spec in walk_attributes(attributes):
            if spec.get("status") == "unconfirmed":
                found.append(f"{owner}.{name}")
            elif "values_documented" in spec:
                found.append(f"{owner}.{name} (documented values)")
    return found


REFERENCE = re.compile(
    r"(?<![\w.\-/])(?P<data>data\.)?(?P<type>[a-z][a-z0-9_]*)\.(?P<name>[a-z0-9_]+)"
    r"(?:\[\d+\])?(?:\.(?P<attr>[a-z0-9_]+))?"
)
NOT_CHECKED = frozenset({"self", "path", "each", "count", "local", "terraform"})
"""Reference roots Terraform resolves by context (self.input, path.module, ...)."""


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a JSON value with its dotted path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [s for i, item in enumerate(value) for s in _strings(item, f"{path}[{i}]")]
    return []


def _attributes(entry: dict[str, Any]) -> set[str]:
    return {"id", *entry["attributes"], *entry.get("exports", [])}


def check_references(documents: dict[str, dict[str, Any]]) -> list[Problem]:
    """Dangling references across a module's documents: `var.X`, `TYPE.NAME.ATTR` and
    `data.TYPE.NAME.ATTR` inside expressions (and `depends_on`) must each name something
    declared, with an attribute its type has (what `terraform validate` would refuse)."""
    table = schema_table()
    variables: set[str] = set()
    declared: dict[tuple[bool, str], set[str]] = {}
    for document in documents.values():
        variables |= set(document.get("variable", {}))
        for section in SECTIONS:
            for rtype, instances in document.get(section, {}).items():
                declared.setdefault((section == "data", rtype), set()).update(instances)
    problems: list[Problem] = []
    for file, document in documents.items():
        for path, text in _strings(document, file):
            if "${" not in text and ".depends_on[" not in path:
                continue
            for match in REFERENCE.finditer(text):
                problem = _reference_problem(table, variables, declared, match)
                if problem:
                    problems.append(Problem(Severity.ERROR, path, problem))
    return problems


def _reference_problem(
    table: dict[str, Any],
    variables: set[str],
    declared: dict[tuple[bool, str], set[str]],
    match: re.Match[str],
) -> str | None:
    is_data, rtype, name, attr = (
        bool(match["data"]),
        match["type"],
        match["name"],
        match["attr"],
    )
    if not is_data and rtype == "var":
        return None if name in variables else f"undeclared variable var.{name}"
    if not is_data and (rtype in NOT_CHECKED or rtype not in table["resources"]):
        return None  # not a resource reference (a function argument, a file name, ...)
    entry = table["data_sources" if is_data else "resources"].get(rtype)
    label = f"{'data.' if is_data else ''}{rtype}.{name}"
    if entry is None:
        return f"{label}: data source type not in the table"
    if name not in declared.get((is_data, rtype), set()):
        return f"{label} is not declared"
    if attr is not None and attr not in _attributes(entry):
        return f"{label}.{attr}: {rtype} has no attribute {attr}"
    return None
