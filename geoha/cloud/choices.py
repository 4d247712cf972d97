"""The names the cloud commands accept: currencies and render kinds.

A module of its own, importing nothing, so that the command line's parser can
list them without importing the cloud code that prices and renders.
"""

from __future__ import annotations

from enum import StrEnum


class Currency(StrEnum):
    """The currency `geoha cost` shows amounts in."""

    INR = "INR"  # the price table's own
    USD = "USD"  # converted at cloud.inr_per_usd


class RenderKind(StrEnum):
    """What `geoha render` writes."""

    CLOUD_INIT = "cloud-init"  # one cloud-init file per VM
    TERRAFORM = "terraform"  # Terraform JSON: E2E Networks and Route 53
