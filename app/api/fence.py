"""The DCS fence: stop serving reads from a local node that is cut off from the cluster.

When a region is partitioned from the others, its Patroni loses the DCS and,
some seconds later, demotes the local primary. Writes that were waiting for
the synchronous standby at that moment are committed locally all the same
("the transaction has already committed locally"), and the demoted node,
restarted read-only, shows them until it is rewound when the partition heals:
a client reading there would see writes the new primary never had.

Patroni itself cannot tell the API in time: it reads the cluster with
serializable reads, which a cut-off etcd member still answers, so its
`dcs_last_seen` keeps moving until it demotes. The region's own etcd member
can: its `/health` says false as soon as it has no quorum (no raft leader, or
a read through the leader fails), within a second of the cut here, long
before the demote (about 11 s later with the reference timings).

So the API asks that member's `/health` every POLL_S seconds (the metrics
listener: health and metrics only, no key-value API). While the member says
it is unhealthy, the region is fenced: reads go to the primary through the
write pool (in a real partition it is unreachable, so reads fail with 503
instead of answering from a node the cluster has left behind), and
`/health/deep` fails, so DNS health checks take the region out. A brief etcd
election fences for a moment only (reads then go to the primary, which is
correct, and one failed deep check is below any DNS threshold). A member
that does not listen fences nothing: it is down, and Patroni uses the other
members; one that answers late leaves its last answer standing.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from app.api.config import HttpUrl
from app.api.periodic import Periodic
from app.api.wire import exchange, http_get

log = logging.getLogger("geoha.api.fence")

POLL_S = 0.5
"""How often the member is asked; the fence closes at most this late."""
REQUEST_TIMEOUT_S = 1.5
"""etcd bounds its own quorum read in /health to 1 s."""
MAX_ANSWER_BYTES = 16 * 1024


def member_health(answer: bytes) -> str | None:
    """Why a member's `/health` answer (status line, headers, body) is unhealthy; None if
    it is healthy. An answer that is not etcd's health document counts as unhealthy."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        return "its /health did not answer in HTTP"
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "its /health answer is not JSON"
    if not isinstance(data, dict) or data.get("health") not in ("true", "false"):
        return "its /health answer has no health field"
    if data["health"] == "true":
        return None
    reason = data.get("reason")
    return f"{reason!s:.100}" if reason else "no raft leader, or no read through it"


async def get_health(url: HttpUrl, timeout_s: float = REQUEST_TIMEOUT_S) -> bytes:
    """The whole answer (head and body) of `GET url`. Raises OSError or TimeoutError."""
    async with asyncio.timeout(timeout_s):
        request = http_get(url.host, url.port, url.path)
        answer = await exchange(url.host, url.port, request, MAX_ANSWER_BYTES + 1)
    if len(answer) > MAX_ANSWER_BYTES:
        raise OSError(f"an answer of more than {MAX_ANSWER_BYTES} bytes from {url}")
    return answer


class DcsFence(Periodic):
    """Polls the region's etcd member every POLL_S seconds; `reason()` is the fence."""

    name = "dcs-fence"
    interval_s = POLL_S

    def __init__(self, url: HttpUrl) -> None:
        super().__init__()
        self.url = url
        self.unhealthy: str | None = None
        """Why the member said it is unhealthy at its last answer (None: healthy, or absent)."""

    def reason(self) -> str | None:
        """Why this region is fenced, or None if it is not."""
        if self.unhealthy is None:
            return None
        return (
            f"this region's etcd member ({self.url}) is unhealthy ({self.unhealthy}): "
            "the region may be cut off from the others"
        )

    async def tick(self) -> None:
        before = self.unhealthy
        try:
            self.unhealthy = member_health(await get_health(self.url))
        except ConnectionRefusedError:
            self.unhealthy = None  # no member there: it is down, Patroni uses the others
        except (OSError, TimeoutError):
            pass  # a slow answer: the last one stands
        if (before is None) != (self.unhealthy is None):
            if self.unhealthy is not None:
                log.warning("fenced: %s; reads go to the primary only", self.reason())
            else:
                log.info("unfenced: this region's etcd member has its quorum again")
