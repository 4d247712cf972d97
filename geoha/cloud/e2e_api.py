"""What the E2E provider cannot do, done over E2E's MyAccount API during `terraform apply`.

Shipped into the rendered module as `e2e_api.py` (standard library only, any
python3 on the machine that runs Terraform) and called by it:

    wait-built    (terraform_data, local-exec) wait until a template VM says
                  its build is done (`built` on its build-status port, which
                  its cloud-init serves to admin_cidr while it builds), then
                  power it off and wait for E2E to report it off: E2E saves an
                  image only from a powered-off node. A template that says
                  `failed` stops the apply at once.
    wait-image    (terraform_data, local-exec) wait while a saved image's state
                  says the save is still going on: the provider's e2e_image
                  returns without waiting, and a scaler group started from an
                  image still being saved fails.
    wait-node     wait until a node reaches a status.
    node-address | lb-address | vpc-network
                  (data "external") a node's or load balancer's private
                  address, or the network E2E gave a VPC: the provider sets
                  them only when it reads the resource back, not when it
                  creates it. Terraform passes what its state already holds
                  (`known`): once that is set, the answer is given at once,
                  without a request, so a plan never waits on E2E.
    peer create | peer delete
                  (terraform_data, local-exec) the VPC peering tunnel between
                  two regions' networks: the provider has no resource for it.

Credentials come from the environment Terraform itself was started with
(`TF_VAR_e2e_api_key`, `TF_VAR_e2e_auth_token`, as docs/CLOUD.md says to set
them), so no secret is ever on a command line, in a rendered file or in
Terraform's state. `E2E_API_URL` overrides the API's address. Every wait is
bounded; progress goes to standard error, one line per change of state. A
read or an action that fails transiently (no answer, HTTP 429 or 5xx) is tried
again after 1, 2, 4, 8 and 16 s; a create (POST) is not repeated blindly.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

API_URL = "https://api.e2enetworks.com/myaccount/api/v1/"
KEY_VARIABLE = "TF_VAR_e2e_api_key"
TOKEN_VARIABLE = "TF_VAR_e2e_auth_token"
REQUEST_TIMEOUT_S = 30.0
FAILED_STATUSES = ("Failed",)
RUNNING = "Running"
POWERED_OFF = "Powered off"
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)
"""Pauses before each new try of an idempotent request that failed transiently."""
IDEMPOTENT = ("GET",)
"""Only reads are tried again as they are: an action or a delete that failed with no answer
may have been done, so the caller looks at the state before it asks again."""
TRANSIENT_HTTP = (429, 500, 502, 503, 504)
BUILD_STATUS_PORT = 8479
"""Where a template serves its build status while it builds (its cloud-init,
geoha.cloud.cloudinit, starts the server; its security group admits admin_cidr)."""
POWER_OFF_TIMEOUT_S = 600.0
"""How long E2E may take to power a node off once asked."""
SELF_POWER_OFF_DELAY_MIN = 2
"""Minutes a built template waits before it shuts itself down (cloud-init power_state):
time for the helper, polling every 15 s, to read `built` first."""
SELF_POWER_OFF_S = SELF_POWER_OFF_DELAY_MIN * 60 + 180.0
"""How long the helper waits for that shutdown before it asks E2E to power the VM off."""
MAX_WAIT_S = 86400.0
"""No wait or poll interval may exceed a day."""
DESCRIPTION = "E2E MyAccount API steps of a geoha deployment (see docs/CLOUD.md)."


class ApiError(Exception):
    """A failure worth one clear line on standard error (and exit status 1)."""


class TransientError(ApiError):
    """No answer, or an answer that says to try again later (HTTP 429, 5xx)."""


def credentials(environ: dict[str, str]) -> tuple[str, str]:
    missing = [name for name in (KEY_VARIABLE, TOKEN_VARIABLE) if not environ.get(name)]
    if missing:
        raise ApiError(
            f"{' and '.join(missing)} not set: export the E2E API key and token as "
            "TF_VAR_e2e_api_key and TF_VAR_e2e_auth_token before terraform apply"
        )
    return environ[KEY_VARIABLE], environ[TOKEN_VARIABLE]


class Api:
    """Just enough of E2E's MyAccount API: every call carries the key, project and location."""

    def __init__(self, environ: dict[str, str], project_id: str, location: str) -> None:
        self.key, self.token = credentials(environ)
        self.base = environ.get("E2E_API_URL") or API_URL
        if urllib.parse.urlsplit(self.base).scheme not in ("http", "https"):
            raise ApiError("E2E_API_URL: an http:// or https:// URL")
        if not self.base.endswith("/"):
            self.base += "/"
        self.project_id = project_id
        self.location = location

    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The `data` of E2E's `{code, data, errors, message}` answer; ApiError otherwise.
        An idempotent request that fails transiently is tried again (RETRY_DELAYS_S)."""
        delays = list(self.retry_delays_s) if method in IDEMPOTENT else []
        while True:
            try:
                return self.call_once(method, path, body)
            except TransientError as error:
                if not delays:
                    raise
                delay = delays.pop(0)
                log(f"{error}; trying again in {delay:.0f} s")
                time.sleep(delay)

    def call_once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        query = urllib.parse.urlencode(
            {"apikey": self.key, "project_id": self.project_id, "location": self.location}
        )
        request = urllib.request.Request(
            f"{self.base}{path}?{query}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "User-Agent": "geoha",
            },
        )
        where = f"{method} {path}"  # never the URL: it carries the API key
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                text = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            detail = self.scrub(error.read().decode("utf-8", "replace")[:300])
            if error.code in (401, 403):
                raise ApiError(
                    f"{where}: E2E refused the credentials (HTTP {error.code}): check "
                    f"{KEY_VARIABLE}, {TOKEN_VARIABLE} and the project ID"
                ) from None
            kind = TransientError if error.code in TRANSIENT_HTTP else ApiError
            raise kind(f"{where}: HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
            reason = self.scrub(str(getattr(error, "reason", error)))
            raise TransientError(f"{where}: E2E's API did not answer ({reason})") from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise ApiError(f"{where}: not JSON: {self.scrub(text[:200])!r}") from None
        if not isinstance(answer, dict) or "data" not in answer:
            raise ApiError(f"{where}: unexpected answer: {self.scrub(text[:200])!r}")
        return answer["data"]

    def scrub(self, text: str) -> str:
        """Text from E2E with the credentials blanked, should an answer echo them."""
        return text.replace(self.key, "***").replace(self.token, "***")

    def node(self, node_id: str) -> dict[str, Any]:
        data = self.call("GET", f"nodes/{node_id}/")
        if not isinstance(data, dict):
            raise ApiError(f"GET nodes/{node_id}/: no node in the answer")
        return data

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        """`GET path`'s object, or None when E2E gives no answer this time (or no object):
        a poll asks again at its next round, until its own deadline."""
        try:
            data = self.call("GET", path)
        except TransientError as error:
            log(f"{error}; asking again at the next poll")
            return None
        return data if isinstance(data, dict) else None

    def node_action(self, node_id: str, action: str) -> Any:
        """`power_off`, `power_on`, ... (E2E's node actions, `PUT nodes/ID/actions/`)."""
        return self.call("PUT", f"nodes/{node_id}/actions/", {"type": action})

    def tunnels(self, vpc_id: str) -> list[dict[str, Any]]:
        data = self.call("GET", f"vpc/tunnels/{vpc_id}/")
        return [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []


@dataclass(frozen=True)
class Round(Generic[T]):
    """What one round of a poll saw."""

    progress: str
    """Logged whenever it changes (`Running, build building`)."""
    late: str
    """The error, should the deadline have passed at this round."""
    result: T | None = None
    """Set when the wait is over: the poll returns it."""
    done: str = ""
    """Logged with the time it took, when the wait is over."""


def poll(name: str, look: Callable[[], Round[T]], *, timeout_s: float, interval_s: float) -> T:
    """Ask `look` every `interval_s` until a round has a result; ApiError with the round's
    `late` once `timeout_s` has passed (`look` raises ApiError itself to stop sooner)."""
    start = time.monotonic()
    last = None
    while True:
        seen = look()
        if seen.result is not None:
            log(f"{name}: {seen.done} after {time.monotonic() - start:.0f} s")
            return seen.result
        elapsed = time.monotonic() - start
        if elapsed >= timeout_s:
            raise ApiError(f"{name}: {seen.late}")
        if seen.progress != last:
            log(f"{name}: {seen.progress} (at most {timeout_s:.0f} s)")
            last = seen.progress
        time.sleep(min(interval_s, max(0.0, timeout_s - elapsed)))


def wait_for_node(
    api: Api,
    node_id: str,
    *,
    name: str,
    ready: Callable[[dict[str, Any]], bool],
    wanted: str,
    timeout_s: float,
    interval_s: float,
) -> dict[str, Any]:
    """Poll the node until `ready(node)`; ApiError if it fails or time runs out."""

    def look() -> Round[dict[str, Any]]:
        node = api.get_or_none(f"nodes/{node_id}/") or {}
        status = str(node.get("status", "?"))
        ready_node = node if node and ready(node) else None
        if ready_node is None and status in FAILED_STATUSES:
            raise ApiError(f"{name}: E2E reports the node {status}")
        late = (
            f"still {status} after {timeout_s:.0f} s, expected {wanted}; look at the VM's "
            "console in MyAccount (cloud-init logs to /var/log/cloud-init-output.log)"
        )
        return Round(f"{status}, waiting for {wanted}", late, ready_node, status)

    return poll(name, look, timeout_s=timeout_s, interval_s=interval_s)


def log(line: str) -> None:
    print(f"e2e_api: {line}", file=sys.stderr, flush=True)


def command_wait_node(args: argparse.Namespace, environ: dict[str, str]) -> None:
    api = Api(environ, args.project_id, args.location)
    wait_for_node(
        api,
        args.node_id,
        name=args.name or f"node {args.node_id}",
        ready=lambda node: node.get("status") == args.until,
        wanted=args.until,
        timeout_s=args.timeout_s,
        interval_s=args.interval_s,
    )


def build_status(address: str, port: int) -> str | None:
    """What a template's build-status port says (`building`, `built`, `failed`), or None
    while nothing answers there (the VM is booting, or admin_cidr leaves this machine out).
    Asked directly, never through an HTTP proxy the environment names."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}:{port}/status", timeout=5.0) as response:
            return str(response.read(64).decode("ascii", "replace").strip())
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        return None


def wait_built(
    api: Api,
    node_id: str,
    *,
    name: str,
    replace: str,
    port: int,
    timeout_s: float,
    interval_s: float,
) -> None:
    """Until the template says `built`; ApiError when it says `failed`, is off without
    having said it, E2E reports it failed, or time runs out (naming what was last seen)."""

    def look() -> Round[bool]:
        node = api.get_or_none(f"nodes/{node_id}/") or {}
        status = str(node.get("status", "?"))
        if status in FAILED_STATUSES:
            raise ApiError(f"{name}: E2E reports the node {status}")
        if status == POWERED_OFF:
            raise ApiError(
                f"{name}: powered off before it said it was built (by hand, or after an earlier "
                "apply stopped half way): its build status went with the power; build it "
                f"again with terraform apply -replace={replace}"
            )
        address = str(node.get("public_ip_address") or "")
        said = build_status(address, port) if status == RUNNING and address else None
        if said == "failed":
            raise ApiError(
                f"{name}: its build failed: look at /var/log/cloud-init-output.log on the VM "
                f"(ssh root@{address}); once the cause is fixed (in geoha.toml, the source "
                f"tarball, or the VM's world), build it again with terraform apply "
                f"-replace={replace}"
            )
        seen = f"says {said!r}" if said else f"no build status on {address or '?'}:{port}"
        late = (
            f"not built after {timeout_s:.0f} s ({status}, {seen}); if nothing answers on "
            f"port {port}, check that admin_cidr includes this machine"
        )
        progress = f"{status}, build {said}" if said else f"{status}, no build status yet"
        return Round(progress, late, True if said == "built" else None, "built")

    poll(name, look, timeout_s=timeout_s, interval_s=interval_s)


def command_wait_built(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """The template is built: it powers itself off (cloud-init, SELF_POWER_OFF_S after its
    last step, a clean shutdown); if it has not by then, E2E is asked to power it off.
    Returns once E2E reports it off: only then may its image be saved."""
    api = Api(environ, args.project_id, args.location)
    name = args.name or f"node {args.node_id}"
    wait_built(
        api,
        args.node_id,
        name=name,
        replace=args.replace,
        port=args.port,
        timeout_s=args.timeout_s,
        interval_s=args.interval_s,
    )

    def wait_off(timeout_s: float) -> None:
        wait_for_node(
            api,
            args.node_id,
            name=name,
            ready=lambda node: node.get("status") == POWERED_OFF,
            wanted=POWERED_OFF,
            timeout_s=timeout_s,
            interval_s=args.interval_s,
        )

    try:
        wait_off(SELF_POWER_OFF_S)
        return
    except ApiError as error:
        log(f"{error}; asking E2E to power it off")
    try:
        api.node_action(args.node_id, "power_off")
    except TransientError as error:  # it may have been done: the wait below tells
        log(f"{error}; waiting to see whether it powers off")
    wait_off(POWER_OFF_TIMEOUT_S)


IMAGE_BUSY = ("sav", "creat", "progress", "pending", "queue", "copy")
"""Words an `image_state` in the making contains (case-insensitive). E2E's list of image
states is not published; `GET images/ID/` and its `image_state` are the provider's own
(client/client.go GetImage, models/image.go at v2.1.6). A state with none of them, or
none at all, counts as saved."""


def image_busy(state: str) -> bool:
    return any(word in state.lower() for word in IMAGE_BUSY)


def command_wait_image(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """Until the image's state no longer says it is being saved (ApiError on a failed one,
    or at the deadline)."""
    api = Api(environ, args.project_id, args.location)

    def look() -> Round[str]:
        data = api.get_or_none(f"images/{args.image_id}/")
        state = str(data.get("image_state") or "") if data is not None else "?"
        if "fail" in state.lower() or "error" in state.lower():
            raise ApiError(f"{name}: E2E reports the image {state}")
        saved = state or "saved"
        late = f"still {state} after {args.timeout_s:.0f} s"
        done = saved if data is not None and not image_busy(state) else None
        return Round(f"{state}, waiting for the save", late, done, saved)

    name = args.name or f"image {args.image_id}"
    poll(name, look, timeout_s=args.timeout_s, interval_s=args.interval_s)


LOOKUP_QUERY = ("id", "project_id", "location", "name", "timeout_s")


@dataclass(frozen=True)
class Lookup:
    """One value E2E assigns when it creates a resource, and where its API shows it."""

    path: str
    key: str
    what: str
    read: Callable[[dict[str, Any]], Any]
    valid: Callable[[str], bool]


def is_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def is_network(text: str) -> bool:
    try:
        ipaddress.IPv4Network(text)
    except ValueError:
        return False
    return "/" in text


LOOKUPS = {
    "node-address": Lookup(
        "nodes/{id}/",
        "private_ip",
        "a private address",
        lambda d: d.get("private_ip_address"),
        is_address,
    ),
    "node-public-address": Lookup(
        "nodes/{id}/",
        "public_ip",
        "a public address",
        lambda d: d.get("public_ip_address"),
        is_address,
    ),
    "lb-address": Lookup(
        "appliances/{id}/",
        "private_ip",
        "a private address",
        lambda d: (d.get("node_detail") or {}).get("private_ip"),
        is_address,
    ),
    "vpc-network": Lookup(
        "vpc/{id}/", "cidr", "its network", lambda d: d.get("ipv4_cidr"), is_network
    ),
}


def seconds(query: dict[str, Any], key: str, default: float | None, command: str) -> float:
    """A positive number of seconds from the query (its default when absent)."""
    text = query.get(key)
    if text is None and default is not None:
        return default
    try:
        value = float(str(text))
    except ValueError:
        value = 0.0
    if not bounded_wait(value):
        raise ApiError(f"{command}: {key} {text!r} is not a positive number of seconds")
    return value


def command_lookup(command: str, stdin: str, environ: dict[str, str], stdout: Any) -> None:
    """Terraform's external data source protocol: a JSON object of strings in, one out."""
    lookup = LOOKUPS[command]
    try:
        query = json.loads(stdin)
    except ValueError:
        raise ApiError(f"{command}: standard input is not a JSON object") from None
    if not isinstance(query, dict):
        raise ApiError(f"{command}: standard input is not a JSON object")
    missing = [key for key in LOOKUP_QUERY if not query.get(key)]
    if missing:
        raise ApiError(f"{command}: query lacks {', '.join(missing)}")
    timeout_s = seconds(query, "timeout_s", None, command)
    interval_s = seconds(query, "interval_s", 10.0, command)
    known = str(query.get("known") or "")
    if lookup.valid(known):
        json.dump({lookup.key: known}, stdout)
        return
    api = Api(environ, query["project_id"], query["location"])
    path = lookup.path.format(id=query["id"])

    def look() -> Round[str]:
        data = api.get_or_none(path)
        found = str(lookup.read(data) or "") if data is not None else ""
        status = str(data.get("status", "?")) if data is not None else "?"
        result = found if lookup.valid(found) else None
        if result is None and status in FAILED_STATUSES:
            raise ApiError(f"{query['name']}: E2E reports it {status}")
        late = f"no {lookup.key} after {timeout_s:.0f} s ({status})"
        return Round(f"{status}, waiting for {lookup.what}", late, result, f"{lookup.key} {found}")

    found = poll(query["name"], look, timeout_s=timeout_s, interval_s=interval_s)
    json.dump({lookup.key: found}, stdout)


def find_tunnel(api: Api, vpc_id: str, name: str) -> dict[str, Any] | None:
    return next((t for t in api.tunnels(vpc_id) if t.get("name") == name), None)


def command_peer(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """Create (idempotently) or delete (if present) the named tunnel of a local VPC."""
    api = Api(environ, args.project_id, args.location)
    existing = find_tunnel(api, args.local_vpc, args.name)
    if args.action == "create":
        if existing is not None:
            log(f"{args.name}: tunnel exists ({existing.get('status', '?')})")
            return
        api.call(
            "POST",
            "vpc/tunnels/",
            {
                "name": args.name,
                "vpc_local_network_id": int(args.local_vpc),
                "vpc_peer_network_id": int(args.peer_vpc),
                "is_peer_vpc_external": False,
            },
        )
        log(f"{args.name}: tunnel created between VPC {args.local_vpc} and VPC {args.peer_vpc}")
        return
    if existing is None:
        log(f"{args.name}: no such tunnel, nothing to delete")
        return
    api.call("DELETE", f"vpc/tunnels/{existing['id']}/delete/")
    log(f"{args.name}: tunnel deleted")


def bounded_wait(seconds: float) -> bool:
    """Positive and at most a day (nan and inf too are refused: every wait is bounded)."""
    return 0 < seconds <= MAX_WAIT_S


def positive(text: str) -> float:
    value = float(text)
    if not bounded_wait(value):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (1-65535), got {text!r}")
    return int(text)


def numeric_id(text: str) -> str:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a numeric E2E ID, got {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="e2e_api.py", description=DESCRIPTION)
    commands = top.add_subparsers(dest="command", required=True)

    def scoped(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--project-id", required=True, type=numeric_id)
        sub.add_argument("--location", required=True)
        return sub

    built = scoped("wait-built", "wait until a template is built, then power it off")
    built.add_argument("--node-id", required=True, type=numeric_id)
    built.add_argument("--name", default="")
    built.add_argument(
        "--replace", default="e2e_node.REGION_TIER_template", help="its Terraform address"
    )
    built.add_argument("--port", type=port_number, default=BUILD_STATUS_PORT)
    built.add_argument("--timeout-s", type=positive, default=2700.0)
    built.add_argument("--interval-s", type=positive, default=15.0)

    image = scoped("wait-image", "wait until a saved image is no longer being saved")
    image.add_argument("--image-id", required=True, type=numeric_id)
    image.add_argument("--name", default="")
    image.add_argument("--timeout-s", type=positive, default=1800.0)
    image.add_argument("--interval-s", type=positive, default=15.0)

    wait = scoped("wait-node", "wait until a node reaches a status")
    wait.add_argument("--node-id", required=True, type=numeric_id)
    wait.add_argument("--until", required=True, help="an E2E node status, e.g. 'Powered off'")
    wait.add_argument("--name", default="")
    wait.add_argument("--timeout-s", type=positive, default=2700.0)
    wait.add_argument("--interval-s", type=positive, default=15.0)

    for name, lookup in LOOKUPS.items():
        commands.add_parser(name, help=f"external data source: {lookup.key} of {lookup.path}")

    peer = scoped("peer", "create or delete a VPC peering tunnel")
    peer.add_argument("action", choices=("create", "delete"))
    peer.add_argument("--name", required=True)
    peer.add_argument("--local-vpc", required=True, type=numeric_id)
    peer.add_argument("--peer-vpc", type=numeric_id)
    return top


def main(
    argv: Sequence[str] | None = None,
    environ: dict[str, str] | None = None,
    stdin: Any = None,
    stdout: Any = None,
) -> int:
    args = parser().parse_args(argv)
    env = dict(os.environ) if environ is None else environ
    try:
        if args.command == "wait-built":
            command_wait_built(args, env)
        elif args.command == "wait-image":
            command_wait_image(args, env)
        elif args.command == "wait-node":
            command_wait_node(args, env)
        elif args.command in LOOKUPS:
            command_lookup(args.command, (stdin or sys.stdin).read(), env, stdout or sys.stdout)
        else:
            if args.action == "create" and not args.peer_vpc:
                raise ApiError("peer create: --peer-vpc is required")
            command_peer(args, env)
    except ApiError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
