"""The fast failover watcher on the cloud's witness VM (`geoha-fastfail.service`).

The same watcher the local controller runs (geoha/ops/fastfail.py), with the cloud's host:

- etcd's health: every member's `GET /health` on its client port, once a second;
- the fence: E2E's API powers the primary's VM off, and the fence holds only once E2E
  reports the VM *Powered off* (polled, at most FENCE_CONFIRM_S); a VM that cannot be
  confirmed off is not fenced, and its lease is not revoked;
- the release: once the DCS names another leader (or Patroni's ttl has passed), the VM is
  powered on again, and Patroni rejoins it as a replica;
- no death certificate: E2E's word is asked only to fence, so a region whose view is
  missing keeps the decision at nothing (fencing.py, rule 5), and Patroni's ttl decides.

Configuration: the JSON file named on the command line, rendered by cloud-init with the
deployment's slots, which geoha-addresses rewrites into real addresses at every boot:
`{"watched": Watched, "e2e": {"project_id": ..., "nodes": {NAME: {"id": .., "location": ..}}}}`.
E2E credentials: TF_VAR_e2e_api_key and TF_VAR_e2e_auth_token, from the unit's
EnvironmentFile (0600). Every step is one line on standard error (the journal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.api.periodic import Periodic
from geoha.cloud.e2e_api import Api, ApiError
from geoha.health import read_etcd
from geoha.ops.fastfail import REQUEST_TIMEOUT_S, FastFailover, Watched, new_leader
from geoha.traffic.tls import verify

log = logging.getLogger("geoha.fastfail")

POWERED_OFF = "Powered off"
FENCE_CONFIRM_S = 60.0
"""How long the fence waits for E2E to report the VM off before it gives up."""
CONFIRM_POLL_S = 2.0
ETCD_POLL_S = 1.0


@dataclass(frozen=True)
class E2eNode:
    id: str
    location: str


@dataclass(frozen=True)
class CloudConfig:
    watched: Watched
    project_id: str
    nodes: dict[str, E2eNode]
    """Every database VM, by plan node name."""

    @classmethod
    def load(cls, path: Path) -> CloudConfig:
        """The rendered file; ValueError naming what is missing or wrong."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            watched = Watched.from_json(json.dumps(data["watched"]))
            e2e = data["e2e"]
            nodes = {
                str(k): E2eNode(str(v["id"]), str(v["location"])) for k, v in e2e["nodes"].items()
            }
            config = cls(watched, str(e2e["project_id"]), nodes)
        except (OSError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(
                f"{path}: not a watcher configuration ({type(exc).__name__}: {exc})"
            ) from None
        missing = [d.name for d in watched.databases if d.name not in nodes]
        if missing:
            raise ValueError(f"{path}: no E2E node for {', '.join(missing)}")
        return config


class EtcdHealth(Periodic):
    """How many etcd members answer `/health` with `"health": "true"`, once a second."""

    name = "etcd-health"
    interval_s = ETCD_POLL_S

    def __init__(self, watched: Watched, client: httpx.AsyncClient) -> None:
        super().__init__()
        self.watched = watched
        self.client = client
        self.healthy = 0

    async def tick(self) -> None:
        answers = await asyncio.gather(*(self.member(e.url("/health")) for e in self.watched.etcd))
        self.healthy = sum(answers)

    async def member(self, url: str) -> bool:
        try:
            answer = await self.client.get(url)
            return read_etcd(answer.status_code, answer.json()).healthy
        except (httpx.HTTPError, ValueError):
            return False


class PowerFence:
    """The cloud's fence: power the VM off through E2E's API and confirm it is off; power it on
    again once another node leads."""

    def __init__(
        self, config: CloudConfig, environ: dict[str, str], client: httpx.AsyncClient
    ) -> None:
        self.config = config
        self.environ = environ
        self.client = client
        self.releases: set[asyncio.Task[None]] = set()

    def api(self, name: str) -> tuple[Api, str]:
        node = self.config.nodes[name]
        return Api(self.environ, self.config.project_id, node.location), node.id

    async def __call__(self, name: str, hold_s: float) -> str | None:
        try:
            await asyncio.to_thread(self.power_off, name)
        except ApiError as exc:
            return str(exc)
        task = asyncio.create_task(self.release(name, hold_s))
        self.releases.add(task)
        task.add_done_callback(self.releases.discard)
        return None

    def power_off(self, name: str) -> None:
        api, node_id = self.api(name)
        if api.node(node_id).get("status") != POWERED_OFF:
            api.node_action(node_id, "power_off")
            log.warning("fence: asked E2E to power %s (node %s) off", name, node_id)
        deadline = time.monotonic() + FENCE_CONFIRM_S
        while True:
            status = str(api.node(node_id).get("status", "?"))
            if status == POWERED_OFF:
                log.warning("fence: E2E reports %s powered off", name)
                return
            if time.monotonic() >= deadline:
                raise ApiError(f"{name} still {status} {FENCE_CONFIRM_S:.0f} s after power_off")
            time.sleep(CONFIRM_POLL_S)

    async def release(self, name: str, hold_s: float) -> None:
        why = await new_leader(self.client, self.config.watched, name, hold_s)
        try:
            api, node_id = self.api(name)
            await asyncio.to_thread(api.node_action, node_id, "power_on")
            log.warning("fence released: %s powered on again (%s)", name, why)
        except ApiError as exc:
            log.error("fence released, but %s could not be powered on: %s", name, exc)


def emit(kind: str, node: str, fields: dict[str, str]) -> None:
    details = ", ".join(f"{k}: {v}" for k, v in fields.items())
    log.warning("%s %s%s", kind, node, f" ({details})" if details else "")


async def run(config: CloudConfig, environ: dict[str, str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tls = verify(config.watched.tls)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, verify=tls) as client:
        etcd = EtcdHealth(config.watched, client)
        await etcd.tick()
        etcd.start()
        fence = PowerFence(config, environ, client)
        watcher = FastFailover(config.watched, fence, emit, etcd_healthy=lambda: etcd.healthy)
        watcher.start()
        log.warning(
            "watching %s from %s (fast failover %s, fence after %gs)",
            ", ".join(d.name for d in config.watched.databases),
            config.watched.witness_region,
            "on" if config.watched.policy.fast else "off",
            config.watched.policy.fence_after_s,
        )
        await stop.wait()
        await watcher.stop()
        await etcd.stop()
        for task in list(fence.releases):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if len(args) != 1:
        print("usage: python -m geoha.ops.fastfail_cloud CONFIG.json", file=sys.stderr)
        return 2
    try:
        config = CloudConfig.load(Path(args[0]))
        Api(dict(os.environ), config.project_id, "")  # the credentials are there
    except (ValueError, ApiError) as exc:
        print(f"geoha-fastfail: {exc}", file=sys.stderr)
        return 2
    asyncio.run(run(config, dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
