"""Topologies the cloud tests share: the reference with its witness elsewhere.

The reference's witness (mumbai) is an AWS instance in ap-south-1; these put it on E2E
(the fast failover watcher runs there) or outside both (`cloud.external`)."""

from __future__ import annotations

from typing import Any


def witness_on(cloud: dict[str, Any]) -> dict[str, Any]:
    """The reference topology with the witness region's `cloud` table replaced."""
    return {
        "regions": {
            "delhi": {"role": "primary", "cidr": "10.10.0.0/16"},
            "chennai": {"role": "replica", "cidr": "10.20.0.0/16"},
            "mumbai": {"role": "witness", "cidr": "10.30.0.0/16", "cloud": cloud},
        }
    }


E2E_WITNESS = witness_on({"location": "Mumbai"})
"""The witness on E2E, where it also runs the fast failover watcher."""
EXTERNAL_WITNESS = witness_on({"external": True})
"""The witness on a VM of the operator's own (`cloud.external`)."""


def toml_text(data: dict[str, Any], prefix: str = "") -> str:
    """A topology file holding `data` (nested tables of strings, numbers and booleans)."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    for key, value in scalars.items():
        text = str(value).lower() if isinstance(value, bool) else repr(value)
        lines.append(f"{key} = {text}".replace("'", '"'))
    text = "\n".join(lines) + "\n" if lines else ""
    for key, value in data.items():
        if isinstance(value, dict):
            text += toml_text(value, f"{prefix}.{key}" if prefix else key)
    return text
