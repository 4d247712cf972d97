"""Scenario fixtures: a whole local deployment per test, on loopback nets of its own.

Each deployment lives in a fresh temporary directory and uses the
127.110/120/130 nets, so it never meets a developer's `geoha up`
(127.10/20/30). Teardown runs `geoha down --purge` whatever the test did, then
checks nothing it started is left running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployment import Deployment, LoopbackNets

NETS = LoopbackNets(delhi="127.110.0.0/16", chennai="127.120.0.0/16", mumbai="127.130.0.0/16")


def new_deployment() -> Deployment:
    return Deployment.in_temp_dir("geoha-scenario-", NETS, name="scenario")


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    dep = new_deployment()
    try:
        dep.up()
        yield dep
    finally:
        dep.close()
