"""The routing table, and the app's routes against the OpenAPI document."""

from __future__ import annotations

import pytest

from app.api.openapi import INSTANCE_ROUTES, ROUTES, openapi_document
from app.api.routing import Router


def table() -> Router[str]:
    router: Router[str] = Router()
    router.add("GET", "/health", "health")
    router.add("GET", "/api/v1/themes", "list")
    router.add("POST", "/api/v1/themes", "create")
    router.add("GET", "/api/v1/themes/{id}", "get")
    router.add("DELETE", "/api/v1/themes/{id}", "delete")
    return router


def test_literal_and_patterned_matches() -> None:
    router = table()
    match = router.match("/api/v1/themes")
    assert match is not None and match.route.handlers == {"GET": "list", "POST": "create"}
    assert match.route.allow == "GET, POST"
    match = router.match("/api/v1/themes/17")
    assert match is not None and match.params == {"id": "17"}
    assert match.route.allow == "DELETE, GET"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/health/",
        "/api/v1/themes/",
        "/api/v1/themes/1/x",
        "/API/v1/themes",
        "//api/v1/themes",
        "/api/v1/themes//",
    ],
)
def test_unknown_paths(path: str) -> None:
    assert table().match(path) is None


def test_a_route_cannot_be_added_twice() -> None:
    router = table()
    with pytest.raises(ValueError, match="routed twice"):
        router.add("GET", "/health", "again")


def test_every_public_route_is_in_the_openapi_document() -> None:
    paths = openapi_document()["paths"]
    for method, path in ROUTES:
        if (method, path) not in INSTANCE_ROUTES:
            assert method.lower() in paths[path], (method, path)
    documented = {(m.upper(), p) for p, ops in paths.items() for m in ops if m != "parameters"}
    assert documented == set(ROUTES) - INSTANCE_ROUTES
