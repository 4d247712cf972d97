"""An oversized request body gets its 413 at every entry, every time.

Straight to an API instance, through the backend LB and through the frontend
LB (HTTP and HTTPS), a body over the API's limit — declared by Content-Length
or streamed chunked — must be answered 413 with the API's JSON error by the
first of them it reaches, never with a reset, a connection closed without an
answer, or a 502. A body of exactly the limit still goes through every hop.
"""

from __future__ import annotations

import json
import ssl
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from geoha.plan import NodeRole
from geoha.render.api import API_MAX_BODY_BYTES
from tests.deployment import Deployment, unique_name

pytestmark = pytest.mark.scenario

OVERSIZED = 2 * 1024 * 1024  # a 2 MB upload, as a user's runaway theme would be
ATTEMPTS = 20
THEMES = "/api/v1/themes"
JSON_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class Entry:
    """Where a client can send a request, and whose X-Served-By its 413 must carry."""

    base: str
    served_by: str
    verify: ssl.SSLContext | bool = True

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=self.verify, timeout=30)


def entries(dep: Deployment, region: str) -> dict[str, Entry]:
    api = dep.plan.in_region(region, NodeRole.API)[0]
    backend = dep.plan.only(region, NodeRole.BACKEND_LB)
    frontend = dep.plan.only(region, NodeRole.FRONTEND_LB)
    ca = ssl.create_default_context(cafile=str(dep.plan.run_dir / "tls" / "ca.pem"))
    return {
        "api": Entry(f"http://{api.endpoint('http')}", f"{region}/{api.name}"),
        "backend LB": Entry(f"http://{backend.endpoint('http')}", f"{region}/{backend.name}"),
        "frontend LB": Entry(f"http://{frontend.endpoint('http')}", f"{region}/{frontend.name}"),
        "frontend LB https": Entry(
            f"https://{frontend.endpoint('https')}", f"{region}/{frontend.name}", ca
        ),
    }


def theme_body(size: int) -> bytes:
    """A valid theme padded with JSON whitespace to exactly `size` bytes."""
    theme = json.dumps({"name": unique_name("edge"), "config": {"accent": "#0a0"}}).encode()
    assert len(theme) <= size
    return theme[:-1] + b" " * (size - len(theme)) + b"}"


def in_chunks(body: bytes, size: int = 16384) -> Iterator[bytes]:
    """The body as an iterator, so httpx sends it chunked (no Content-Length)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post(client: httpx.Client, body: bytes, chunked: bool) -> httpx.Response:
    content = in_chunks(body) if chunked else body
    return client.post(THEMES, content=content, headers=JSON_HEADERS)


def outcomes(entry: Entry, body: bytes, chunked: bool) -> Counter[str]:
    """What ATTEMPTS posts of `body` got: "413" for the expected answer, else what happened."""
    seen: Counter[str] = Counter()
    with entry.client() as client:
        for _ in range(ATTEMPTS):
            try:
                response = post(client, body, chunked)
            except httpx.TransportError as exc:
                seen[type(exc).__name__] += 1
                continue
            seen[describe(response, entry.served_by)] += 1
    return seen


def describe(response: httpx.Response, served_by: str) -> str:
    if response.status_code != 413:
        return str(response.status_code)
    error = response.json()["error"]
    expected = {
        "code": "body_too_large",
        "field": "body",
        "message": f"body must be at most {API_MAX_BODY_BYTES} bytes",
    }
    if error != expected:
        return f"413 with {error}"
    if response.headers.get("x-served-by") != served_by:
        return f"413 from {response.headers.get('x-served-by')}"
    return "413"


def test_oversized_bodies_get_413_at_every_entry(shared_deployment: Deployment) -> None:
    oversized = b"{" + b" " * (OVERSIZED - 2) + b"}"
    results: dict[str, Counter[str]] = {}
    for name, entry in entries(shared_deployment, "delhi").items():
        for chunked in (False, True):
            label = f"{name}, {'chunked' if chunked else 'Content-Length'}"
            results[label] = outcomes(entry, oversized, chunked)
    expected = {label: Counter({"413": ATTEMPTS}) for label in results}
    report = "; ".join(f"{label}: {dict(seen)}" for label, seen in results.items())
    assert results == expected, report


def test_the_limit_is_exact_at_every_entry(shared_deployment: Deployment) -> None:
    """A body of exactly the limit reaches the database; one byte more is 413."""
    for name, entry in entries(shared_deployment, "delhi").items():
        with entry.client() as client:
            for chunked in (False, True):
                how = f"{name}, {'chunked' if chunked else 'Content-Length'}"
                fits = post(client, theme_body(API_MAX_BODY_BYTES), chunked)
                assert fits.status_code == 201, (how, fits.text)
                assert client.delete(fits.headers["location"]).status_code == 204
                over = post(client, theme_body(API_MAX_BODY_BYTES + 1), chunked)
                assert describe(over, entry.served_by) == "413", (how, over.text)
                if name.startswith("frontend"):  # the LB's own answer is dressed like the rest
                    assert over.headers["x-content-type-options"] == "nosniff", how
