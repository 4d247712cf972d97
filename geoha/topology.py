"""The topology file as geoha's commands read it: the spec's own rules plus the cloud's.

`geoha.spec` validates what every deployment needs and knows no cloud; the
rules here are those a file must also meet because its cloud settings name
things outside the spec (the plans of the price table). Every command loads
its topology through this module, so a file `geoha validate` accepts is one
`geoha cost` and `geoha render` accept too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoha.cloud.prices import plan_errors
from geoha.spec import Spec, SpecRule, load_spec, parse_spec

RULES: tuple[SpecRule, ...] = (plan_errors,)
"""Every `regions.R.cloud.*_plan` is a plan of the price table, of the right kind."""


def load_topology(path: Path | None) -> Spec:
    """Read a topology file (the reference topology when None); SpecError lists every problem."""
    return load_spec(path, RULES)


def parse_topology(data: dict[str, Any]) -> Spec:
    """Validate parsed TOML data; SpecError lists every problem."""
    return parse_spec(data, RULES)
