"""A small routing table: literal path segments and `{param}` placeholders.

Pure and generic over the handler type, so the table itself is unit-tested
without an app. Matching is exact (no trailing-slash folding): unknown paths
are 404, known paths with another method are 405 with `Allow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

H = TypeVar("H")


@dataclass
class Route(Generic[H]):
    """One path pattern and the handler for each method it answers."""

    pattern: str
    segments: tuple[str, ...]
    handlers: dict[str, H] = field(default_factory=dict)

    @property
    def allow(self) -> str:
        """The `Allow` header value for this path."""
        return ", ".join(sorted(self.handlers))


@dataclass(frozen=True)
class Match(Generic[H]):
    route: Route[H]
    params: dict[str, str]


class Router(Generic[H]):
    """Routes added in order; literal routes are looked up in one dict access."""

    def __init__(self) -> None:
        self._literal: dict[str, Route[H]] = {}
        self._patterned: list[Route[H]] = []
        self.routes: list[Route[H]] = []

    def add(self, method: str, pattern: str, handler: H) -> None:
        route = self._literal.get(pattern) or next(
            (r for r in self._patterned if r.pattern == pattern), None
        )
        if route is None:
            route = Route(pattern, tuple(pattern.strip("/").split("/")))
            self.routes.append(route)
            if "{" in pattern:
                self._patterned.append(route)
            else:
                self._literal[pattern] = route
        if method in route.handlers:
            raise ValueError(f"{method} {pattern} is routed twice")
        route.handlers[method] = handler

    def match(self, path: str) -> Match[H] | None:
        literal = self._literal.get(path)
        if literal is not None:
            return Match(literal, {})
        if not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        for route in self._patterned:
            params = _bind(route.segments, parts)
            if params is not None:
                return Match(route, params)
        return None


def _bind(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    if len(segments) != len(parts):
        return None
    params: dict[str, str] = {}
    for segment, part in zip(segments, parts, strict=True):
        if segment.startswith("{") and segment.endswith("}"):
            if not part:
                return None
            params[segment[1:-1]] = part
        elif segment != part:
            return None
    return params
