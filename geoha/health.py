"""What a probe of a node found: one typed answer for every kind of node."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DbRole(StrEnum):
    """A database node's role as Patroni reports it."""

    PRIMARY = "primary"
    REPLICA = "replica"


@dataclass(frozen=True)
class Health:
    """Whether a node serves, with a short human detail ("replica, streaming")."""

    healthy: bool
    detail: str
    db_role: DbRole | None = None
    """For a database node that answered: its role; None for other nodes."""
