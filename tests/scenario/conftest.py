"""Scenario fixtures: whole local deployments on loopback nets of their own (127.110/120/130).

Two fixtures, one deployment at a time on these nets:

- `shared_deployment`: one deployment for the tests that leave it as they
  found it (they kill, fail over, switch over or partition nothing; data they
  write has a unique name). It comes up for the first such test and goes down
  as soon as the next test does not share it. Scenario tests that share it run
  first, so that happens once per session.
- `deployment`: a deployment of the test's own, for every test that breaks
  something; `data_deployment` the same with the data tier only.

Either way teardown runs `geoha down --purge` whatever the test did, then
checks that nothing it started is left running.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployment import Deployment, LoopbackNets

NETS = LoopbackNets(
    delhi="127.110.0.0/16", chennai="127.120.0.0/16", mumbai="127.130.0.0/16", dns="127.0.0.11"
)
SCENARIO_DIR = Path(__file__).resolve().parent
SHARED = "shared_deployment"


def new_deployment(tiers: str = "all") -> Deployment:
    return Deployment.in_temp_dir("geoha-scenario-", NETS, name="scenario", tiers=tiers)


class SharedDeployment:
    """At most one running deployment, brought up on first use and kept until closed."""

    def __init__(self) -> None:
        self.running: Deployment | None = None
        self.failed_up: str | None = None

    def get(self) -> Deployment:
        if self.failed_up is not None:
            pytest.fail(f"the shared deployment did not come up earlier: {self.failed_up}")
        if self.running is None:
            dep = new_deployment()
            try:
                dep.up()
            except BaseException as exc:
                self.failed_up = str(exc).splitlines()[0] if str(exc) else repr(exc)
                dep.close()
                raise
            self.running = dep
        return self.running

    def close(self) -> None:
        dep, self.running = self.running, None
        if dep is not None:
            dep.close()


def shares(item: pytest.Item) -> bool:
    """Whether a test uses the shared deployment."""
    return SHARED in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Scenario tests that share a deployment first (otherwise in their usual order)."""
    slots = [i for i, item in enumerate(items) if item.path.is_relative_to(SCENARIO_DIR)]
    ordered = sorted((items[i] for i in slots), key=lambda item: not shares(item))
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


def next_test_shares(request: pytest.FixtureRequest) -> bool:
    items = request.session.items
    following = items.index(request.node) + 1
    return following < len(items) and shares(items[following])


@pytest.fixture(scope="session")
def shared_deployment_holder() -> Iterator[SharedDeployment]:
    holder = SharedDeployment()
    try:
        yield holder
    finally:
        holder.close()  # after an interrupted session


@pytest.fixture
def shared_deployment(
    request: pytest.FixtureRequest, shared_deployment_holder: SharedDeployment
) -> Iterator[Deployment]:
    """The deployment shared by the tests that leave it as they found it."""
    yield shared_deployment_holder.get()
    if not next_test_shares(request):
        shared_deployment_holder.close()


def own_deployment(tiers: str) -> Iterator[Deployment]:
    yield from running(new_deployment(tiers))


def running(dep: Deployment) -> Iterator[Deployment]:
    """`dep` brought up for a test, and down again after it, whatever the test did."""
    try:
        dep.up()
        yield dep
    finally:
        dep.close()


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    """A deployment of this test's own: for tests that kill, fail over, switch over
    or partition something."""
    yield from own_deployment("all")


@pytest.fixture
def data_deployment() -> Iterator[Deployment]:
    """As `deployment`, with the data tier only (`geoha up --tiers data`): etcd,
    databases and the schema, for tests that need no request path."""
    yield from own_deployment("data")
