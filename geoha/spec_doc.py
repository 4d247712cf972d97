"""docs/TOPOLOGY.md, generated from the spec models' field docstrings.

Regenerate with `make docs` (python -m geoha.spec_doc > docs/TOPOLOGY.md);
a unit test fails when the file is out of date.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from geoha.spec import Region, Spec

HEADER = """# The topology file (`geoha.toml`)

Generated from `geoha/spec.py` by `make docs`; do not edit by hand.

Every key is optional: an absent key takes the default shown, and no file at
all is the reference topology (delhi primary, chennai replica, mumbai witness).
Unknown keys are rejected; errors name the dotted path of the key.
"""


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " / ".join(f'"{m.value}"' for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if origin is dict:
        return "table of tables"
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "none")


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "see below"
    value = field.get_default()
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, Enum):
        return f'"{value.value}"'
    if value is None:
        return "none"
    return json.dumps(value)


def section(title: str, model: type[BaseModel]) -> list[str]:
    lines = [f"## `{title}`", "", (model.__doc__ or "").strip(), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        description = " ".join((field.description or "").split())
        lines.append(
            f"| `{name}` | {type_name(annotation)} | {default_text(field)} | {description} |"
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((f"{title}.{name}" if title != "top level" else name, annotation))
    lines.append("")
    for path, sub in nested:
        lines += section(path, sub)
    return lines


def topology_reference() -> str:
    lines = [HEADER]
    lines += section("top level", Spec)
    lines += section("regions.NAME", Region)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(topology_reference())
