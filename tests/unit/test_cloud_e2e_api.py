"""The module's E2E API helper (geoha.cloud.e2e_api) against a fake of E2E's API on loopback.

E2E's API is not reachable from here: the fake answers in E2E's shape
(`{code, data, errors, message}`) and records every request, so these tests
check the helper's own logic: polling, bounds, errors, idempotent peering,
and that no credential ever reaches its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml

from geoha.cloud import e2e_api
from geoha.cloud.cloudinit import render_vm
from geoha.cloud.terraform import render_terraform
from geoha.cloud.vms import VmKind, cloud_plan, cloud_vms
from geoha.ops import fastfail_cloud
from geoha.ops.fastfail_cloud import CloudConfig, PowerFence
from geoha.spec import load_spec, parse_spec
from tests.unit.cloud_specs import E2E_WITNESS

KEY, TOKEN = "fake-key-4f1c9a", "fake-token-9b2e77"


@dataclass
class FakeE2E:
    """Node statuses are served in order (the last one repeats); tunnels per VPC network."""

    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    others: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Other GETs by path below the API's root (`vpc/5/`), served in order like nodes."""
    tunnels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    status_code: int = 200
    transient_failures: int = 0
    """This many requests (of `transient_method`, if set) are answered 503 first."""
    transient_method: str = ""
    url: str = ""

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        if self.transient_failures > 0 and self.transient_method in ("", method):
            self.transient_failures -= 1
            return 503, {"code": 503, "message": "Service Unavailable"}
        if self.status_code != 200:
            echo = f"bad request apikey={KEY} token={TOKEN}"
            return self.status_code, {"code": self.status_code, "message": echo}
        node = re.fullmatch(r"/api/v1/nodes/(\d+)/", path)
        if node and method == "GET":
            states = self.nodes[node.group(1)]
            state = states.pop(0) if len(states) > 1 else states[0]
            return 200, {"code": 200, "data": state, "message": "Success"}
        other = path.removeprefix("/api/v1/")
        if other in self.others and method == "GET":
            states = self.others[other]
            state = states.pop(0) if len(states) > 1 else states[0]
            return 200, {"code": 200, "data": state, "message": "Success"}
        action = re.fullmatch(r"/api/v1/nodes/(\d+)/actions/", path)
        if action and method == "PUT":
            return 200, {"code": 200, "data": {"status": "in progress"}, "message": "Success"}
        listing = re.fullmatch(r"/api/v1/vpc/tunnels/(\d+)/", path)
        if listing and method == "GET":
            return 200, {"code": 200, "data": self.tunnels.get(listing.group(1), [])}
        if path == "/api/v1/vpc/tunnels/" and method == "POST":
            return 200, {"code": 200, "data": {"id": "77", "status": "Creating"}}
        if re.fullmatch(r"/api/v1/vpc/tunnels/\d+/delete/", path) and method == "DELETE":
            return 200, {"code": 200, "data": {}, "message": "Deleted"}
        return 404, {"code": 404, "message": "no such path"}


@pytest.fixture
def fake() -> Iterator[FakeE2E]:
    state = FakeE2E()

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            query = parse_qs(url.query)
            query["authorization"] = [self.headers.get("Authorization", "")]
            state.requests.append((self.command, url.path, query, body))
            code, answer = state.answer(self.command, url.path)
            payload = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = handle_one

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        state.url = f"http://127.0.0.1:{port}/api/v1/"
        yield state


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """An HTTP server on a free loopback port, shut down on leaving; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two more tries, at once: the real pauses (1 to 16 s) are for E2E, not for a fake."""
    monkeypatch.setattr(e2e_api.Api, "retry_delays_s", (0.0, 0.0))


def env(fake: FakeE2E) -> dict[str, str]:
    return {"TF_VAR_e2e_api_key": KEY, "TF_VAR_e2e_auth_token": TOKEN, "E2E_API_URL": fake.url}


def run(argv: list[str], environ: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    """The helper's exit status, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = e2e_api.main(argv, environ, io.StringIO(stdin), out)
    return code, out.getvalue(), err.getvalue()


WAIT = ["wait-node", "--node-id", "42", "--project-id", "7", "--location", "Delhi"]
FAST = ["--interval-s", "0.01"]


@dataclass
class BuildStatus:
    """A template's build-status port on loopback: answers `said` in order (last repeats)."""

    said: list[str]
    port: int = 0


@pytest.fixture
def build_status() -> Iterator[BuildStatus]:
    state = BuildStatus(said=["building"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            text = state.said.pop(0) if len(state.said) > 1 else state.said[0]
            payload = f"{text}\n".encode()
            self.send_response(200 if self.path == "/status" else 404)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        state.port = port
        yield state


def built_argv(status: BuildStatus, *extra: str) -> list[str]:
    return [
        "wait-built",
        "--node-id",
        "42",
        "--project-id",
        "7",
        "--location",
        "Delhi",
        "--name",
        "delhi-web-template",
        "--replace",
        "e2e_node.delhi_web_template",
        "--port",
        str(status.port),
        *FAST,
        *extra,
    ]


RUNNING_AT = {"status": "Running", "public_ip_address": "127.0.0.1"}


def test_wait_built_waits_for_built_then_for_the_template_to_shut_itself_down(
    fake: FakeE2E, build_status: BuildStatus
) -> None:
    build_status.said = ["building", "building", "built"]
    fake.nodes["42"] = [
        {"status": "Creating", "public_ip_address": ""},
        RUNNING_AT,
        RUNNING_AT,
        RUNNING_AT,
        RUNNING_AT,  # cloud-init's clean shutdown comes a while after `built`
        {"status": "Powering off"},
        {"status": "Powered off"},
    ]
    code, _, err = run(built_argv(build_status), env(fake))
    assert code == 0, err
    assert not [r for r in fake.requests if r[0] == "PUT"]
    assert "delhi-web-template: Running, build building" in err
    assert "delhi-web-template: built after" in err
    assert "delhi-web-template: Powered off after" in err


def test_a_built_template_that_does_not_shut_down_is_powered_off(
    fake: FakeE2E, build_status: BuildStatus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(e2e_api, "SELF_POWER_OFF_S", 0.2)
    build_status.said = ["built"]
    running = [RUNNING_AT] * 40  # more polls than 0.2 s holds
    fake.nodes["42"] = [*running, {"status": "Powering off"}, {"status": "Powered off"}]
    code, _, err = run(built_argv(build_status), env(fake))
    assert code == 0, err
    actions = [(r[1], r[3]) for r in fake.requests if r[0] == "PUT"]
    assert actions == [("/api/v1/nodes/42/actions/", {"type": "power_off"})]
    assert "asking E2E to power it off" in err


def test_a_template_powered_off_without_saying_built_is_not_taken_as_built(
    fake: FakeE2E, build_status: BuildStatus
) -> None:
    """The power state is no signal: a VM off (by hand, or after an apply stopped half way)
    that never said `built` stops the step at once, with how to build it again."""
    fake.nodes["42"] = [{"status": "Powered off", "public_ip_address": "127.0.0.1"}]
    code, _, err = run(built_argv(build_status), env(fake))
    assert code == 1
    assert "delhi-web-template: powered off before it said it was built" in err
    assert "terraform apply -replace=e2e_node.delhi_web_template" in err
    assert not [r for r in fake.requests if r[0] == "PUT"]


def test_a_failed_build_stops_at_once_with_where_to_look(
    fake: FakeE2E, build_status: BuildStatus
) -> None:
    build_status.said = ["building", "failed"]
    fake.nodes["42"] = [RUNNING_AT]
    code, _, err = run(built_argv(build_status), env(fake))
    assert code == 1
    assert "delhi-web-template: its build failed: look at /var/log/cloud-init-output.log" in err
    assert not [r for r in fake.requests if r[0] == "PUT"]


def test_no_build_status_names_admin_cidr(fake: FakeE2E) -> None:
    fake.nodes["42"] = [RUNNING_AT]
    closed = BuildStatus(said=[], port=9)  # discard port: nothing answers
    code, _, err = run(built_argv(closed, "--timeout-s", "0.2"), env(fake))
    assert code == 1
    assert "no build status on 127.0.0.1:9" in err and "admin_cidr" in err


IMAGE = ["wait-image", "--image-id", "77", "--project-id", "7", "--location", "Delhi", *FAST]


def test_wait_image_waits_while_the_image_is_being_saved(fake: FakeE2E) -> None:
    fake.others["images/77/"] = [
        {"image_state": "Saving"},
        {"image_state": "Creating"},
        {"image_state": "Ready"},
    ]
    code, _, err = run([*IMAGE, "--name", "delhi-web image"], env(fake))
    assert code == 0, err
    assert [r[1] for r in fake.requests] == ["/api/v1/images/77/"] * 3
    assert "delhi-web image: Saving, waiting for the save" in err
    assert "delhi-web image: Ready after" in err


def test_wait_image_stops_on_a_failed_image(fake: FakeE2E) -> None:
    fake.others["images/77/"] = [{"image_state": "Saving"}, {"image_state": "Failed"}]
    code, _, err = run(IMAGE, env(fake))
    assert code == 1
    assert "image 77: E2E reports the image Failed" in err


def test_wait_node_polls_until_the_status_and_reports_progress(fake: FakeE2E) -> None:
    fake.nodes["42"] = [{"status": s} for s in ("Creating", "Running", "Running", "Powered off")]
    argv = [*WAIT, "--name", "delhi-web-template", "--until", "Powered off", *FAST]
    code, _, err = run(argv, env(fake))
    assert code == 0, err
    assert len(fake.requests) == 4
    assert "delhi-web-template: Creating, waiting for Powered off" in err
    assert "delhi-web-template: Running, waiting for Powered off" in err
    assert "delhi-web-template: Powered off after" in err
    method, path, query, _ = fake.requests[0]
    assert (method, path) == ("GET", "/api/v1/nodes/42/")
    assert query["apikey"] == [KEY] and query["authorization"] == [f"Bearer {TOKEN}"]
    assert (query["project_id"], query["location"]) == (["7"], ["Delhi"])
    assert KEY not in err and TOKEN not in err


def test_wait_node_gives_up_after_its_timeout(fake: FakeE2E) -> None:
    fake.nodes["42"] = [{"status": "Running"}]
    argv = [*WAIT, "--name", "t", "--until", "Powered off", "--timeout-s", "0.2", *FAST]
    code, _, err = run(argv, env(fake))
    assert code == 1
    assert "t: still Running after 0 s, expected Powered off" in err
    assert "cloud-init-output.log" in err


def test_wait_node_stops_when_e2e_reports_the_node_failed(fake: FakeE2E) -> None:
    fake.nodes["42"] = [{"status": "Creating"}, {"status": "Failed"}]
    code, _, err = run([*WAIT, "--name", "t", "--until", "Powered off", *FAST], env(fake))
    assert code == 1
    assert "t: E2E reports the node Failed" in err


def test_refused_credentials_are_named_and_never_printed(fake: FakeE2E) -> None:
    fake.status_code = 401
    fake.nodes["42"] = [{"status": "Running"}]
    code, _, err = run([*WAIT, "--until", "Powered off"], env(fake))
    assert code == 1
    assert "E2E refused the credentials (HTTP 401)" in err
    assert "TF_VAR_e2e_api_key" in err
    assert KEY not in err and TOKEN not in err


def test_an_answer_echoing_the_credentials_is_scrubbed(fake: FakeE2E) -> None:
    fake.status_code = 500
    code, _, err = run([*WAIT, "--until", "Powered off", "--timeout-s", "0.2", *FAST], env(fake))
    assert code == 1
    assert "GET nodes/42/: HTTP 500" in err and "apikey=***" in err
    assert KEY not in err and TOKEN not in err


def test_a_transient_failure_of_a_read_is_tried_again(fake: FakeE2E) -> None:
    fake.transient_failures = 2
    fake.nodes["42"] = [{"status": "Powered off"}]
    code, _, err = run([*WAIT, "--until", "Powered off", *FAST], env(fake))
    assert code == 0, err
    assert [r[0] for r in fake.requests] == ["GET", "GET", "GET"]
    assert "GET nodes/42/: HTTP 503: " in err and "trying again in 0 s" in err


def test_a_poll_outlasts_e2e_failing_every_try_until_its_own_deadline(fake: FakeE2E) -> None:
    """Three tries of a read fail: the poll asks again at its next round, and the node
    reaching its status then is enough (a bad minute at E2E does not end a 45-minute wait)."""
    fake.transient_failures = 3
    fake.nodes["42"] = [{"status": "Powered off"}]
    code, _, err = run([*WAIT, "--until", "Powered off", *FAST], env(fake))
    assert code == 0, err
    assert len(fake.requests) == 4
    assert "GET nodes/42/: HTTP 503: " in err and "asking again at the next poll" in err


def test_a_poll_with_no_answer_at_all_ends_at_its_deadline(fake: FakeE2E) -> None:
    fake.transient_failures = 10_000
    argv = [*WAIT, "--until", "Powered off", "--timeout-s", "0.3", *FAST]
    code, _, err = run(argv, env(fake))
    assert code == 1
    assert "error: node 42: still ? after 0 s, expected Powered off" in err


def test_a_create_is_not_repeated_blindly(fake: FakeE2E) -> None:
    """E2E may have made the tunnel before it failed: a second POST could make two."""
    fake.transient_failures, fake.transient_method = 1, "POST"
    argv = ["peer", "create", *PEER, "--local-vpc", "1155", "--peer-vpc", "1189"]
    code, _, err = run(argv, env(fake))
    assert code == 1
    assert [r[0] for r in fake.requests] == ["GET", "POST"]
    assert "POST vpc/tunnels/: HTTP 503" in err and "trying again" not in err


def test_missing_credentials_are_named_before_any_request(fake: FakeE2E) -> None:
    code, _, err = run([*WAIT, "--until", "Powered off"], {"E2E_API_URL": fake.url})
    assert code == 1
    assert "TF_VAR_e2e_api_key and TF_VAR_e2e_auth_token not set" in err
    assert fake.requests == []


def test_an_unreachable_api_is_a_clear_error() -> None:
    environ = {"TF_VAR_e2e_api_key": KEY, "TF_VAR_e2e_auth_token": TOKEN}
    environ["E2E_API_URL"] = "http://127.0.0.1:9/api/v1/"  # discard port: nothing listens
    code, _, err = run([*WAIT, "--until", "Powered off", "--timeout-s", "0.2", *FAST], environ)
    assert code == 1
    assert "GET nodes/42/: E2E's API did not answer" in err
    assert KEY not in err


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (
            [
                "wait-node",
                "--node-id",
                "x1",
                "--project-id",
                "7",
                "--location",
                "Delhi",
                "--until",
                "a",
            ],
            "expected a numeric E2E ID",
        ),
        ([*WAIT, "--until", "a", "--timeout-s", "-3"], "expected a positive number of seconds"),
        (
            ["peer", "create", "--name", "n", "--project-id", "7", "--location", "Delhi"],
            "--local-vpc",
        ),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        e2e_api.main(argv, {})
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


NODE_QUERY = {"id": "42", "project_id": "7", "location": "Chennai", "name": "chennai-db"}


def test_node_address_answers_terraforms_external_protocol(fake: FakeE2E) -> None:
    fake.nodes["42"] = [
        {"status": "Creating", "private_ip_address": ""},
        {"status": "Creating", "private_ip_address": ""},
        {"status": "Creating", "private_ip_address": "10.20.0.9"},
    ]
    query = {**NODE_QUERY, "timeout_s": "5", "interval_s": "0.01", "known": ""}
    code, out, err = run(["node-address"], env(fake), json.dumps(query))
    assert code == 0, err
    # The address is all it waits for: a node powered off later keeps it.
    assert json.loads(out) == {"private_ip": "10.20.0.9"}
    assert len(fake.requests) == 3
    assert fake.requests[0][2]["location"] == ["Chennai"]
    assert "chennai-db: Creating, waiting for a private address" in err


def test_what_terraform_already_knows_is_answered_without_a_request(fake: FakeE2E) -> None:
    """Once the provider has read the value back into the state, every later plan gets it at
    once: no request, no wait, no credentials needed (a VM down in an incident blocks no plan)."""
    query = {**NODE_QUERY, "timeout_s": "5", "known": "10.20.0.9"}
    code, out, err = run(["node-address"], {"E2E_API_URL": fake.url}, json.dumps(query))
    assert (code, json.loads(out)) == (0, {"private_ip": "10.20.0.9"}), err
    network = {**NODE_QUERY, "timeout_s": "5", "known": "172.16.4.0/23"}
    code, out, err = run(["vpc-network"], {"E2E_API_URL": fake.url}, json.dumps(network))
    assert (code, json.loads(out)) == (0, {"cidr": "172.16.4.0/23"}), err
    assert fake.requests == []


def test_lb_address_and_vpc_network_read_where_e2e_shows_them(fake: FakeE2E) -> None:
    fake.others["appliances/42/"] = [
        {"status": "Creating", "node_detail": {"private_ip": ""}},
        {"status": "Running", "node_detail": {"private_ip": "10.20.0.3"}},
    ]
    fake.others["vpc/42/"] = [{"state": "Creating"}, {"ipv4_cidr": "172.16.8.0/23"}]
    query = json.dumps({**NODE_QUERY, "timeout_s": "5", "interval_s": "0.01", "known": "bad"})
    code, out, err = run(["lb-address"], env(fake), query)
    assert (code, json.loads(out)) == (0, {"private_ip": "10.20.0.3"}), err
    code, out, err = run(["vpc-network"], env(fake), query)
    assert (code, json.loads(out)) == (0, {"cidr": "172.16.8.0/23"}), err
    assert [r[1] for r in fake.requests] == ["/api/v1/appliances/42/"] * 2 + ["/api/v1/vpc/42/"] * 2


def test_a_lookup_gives_up_after_its_timeout(fake: FakeE2E) -> None:
    fake.nodes["42"] = [{"status": "Creating", "private_ip_address": ""}]
    query = json.dumps({**NODE_QUERY, "timeout_s": "0.2", "interval_s": "0.01"})
    code, out, err = run(["node-address"], env(fake), query)
    assert (code, out) == (1, "")
    assert "chennai-db: no private_ip after 0 s (Creating)" in err


@pytest.mark.parametrize(
    ("stdin", "complaint"),
    [
        ("not json", "standard input is not a JSON object"),
        ('["a"]', "standard input is not a JSON object"),
        (json.dumps({"id": "42"}), "query lacks project_id, location, name, timeout_s"),
        (
            json.dumps({**NODE_QUERY, "timeout_s": "soon"}),
            "timeout_s 'soon' is not a positive number of seconds",
        ),
        (
            json.dumps({**NODE_QUERY, "timeout_s": "5", "interval_s": "-1"}),
            "interval_s '-1' is not a positive number of seconds",
        ),
    ],
)
def test_node_address_rejects_a_bad_query(fake: FakeE2E, stdin: str, complaint: str) -> None:
    code, out, err = run(["node-address"], env(fake), stdin)
    assert (code, out) == (1, "")
    assert complaint in err
    assert fake.requests == []


PEER = ["--name", "geoha-delhi-chennai", "--project-id", "7", "--location", "Delhi"]


def test_peer_create_posts_once_and_is_idempotent(fake: FakeE2E) -> None:
    argv = ["peer", "create", *PEER, "--local-vpc", "1155", "--peer-vpc", "1189"]
    code, _, err = run(argv, env(fake))
    assert code == 0, err
    posts = [r for r in fake.requests if r[0] == "POST"]
    assert [(p[1], p[3]) for p in posts] == [
        (
            "/api/v1/vpc/tunnels/",
            {
                "name": "geoha-delhi-chennai",
                "vpc_local_network_id": 1155,
                "vpc_peer_network_id": 1189,
                "is_peer_vpc_external": False,
            },
        )
    ]
    fake.tunnels["1155"] = [{"id": "77", "name": "geoha-delhi-chennai", "status": "Active"}]
    fake.requests.clear()
    code, _, err = run(argv, env(fake))
    assert code == 0
    assert [r[0] for r in fake.requests] == ["GET"]
    assert "tunnel exists (Active)" in err


def test_peer_delete_removes_the_named_tunnel_only(fake: FakeE2E) -> None:
    fake.tunnels["1155"] = [
        {"id": "76", "name": "someone-else", "status": "Active"},
        {"id": "77", "name": "geoha-delhi-chennai", "status": "Active"},
    ]
    code, _, err = run(["peer", "delete", *PEER, "--local-vpc", "1155"], env(fake))
    assert code == 0, err
    assert [(r[0], r[1]) for r in fake.requests] == [
        ("GET", "/api/v1/vpc/tunnels/1155/"),
        ("DELETE", "/api/v1/vpc/tunnels/77/delete/"),
    ]
    fake.tunnels["1155"] = fake.tunnels["1155"][:1]
    fake.requests.clear()
    code, _, err = run(["peer", "delete", *PEER, "--local-vpc", "1155"], env(fake))
    assert code == 0 and "nothing to delete" in err
    assert [r[0] for r in fake.requests] == ["GET"]


def test_peer_create_needs_the_peer_network(fake: FakeE2E) -> None:
    code, _, err = run(["peer", "create", *PEER, "--local-vpc", "1155"], env(fake))
    assert code == 1 and "--peer-vpc is required" in err


def rendered() -> dict[str, str]:
    return {str(f.path): f.text for f in render_terraform(cloud_plan(load_spec(None)))}


def test_the_module_ships_the_helper_and_the_system_python_runs_it(tmp_path: Path) -> None:
    helper = tmp_path / "e2e_api.py"
    helper.write_text(rendered()["e2e_api.py"], encoding="utf-8")
    assert helper.read_text() == Path(e2e_api.__file__).read_text()
    # Standard library only: the operator's python3, not geoha's virtualenv.
    done = subprocess.run(
        ["/usr/bin/python3", "-I", str(helper), "--help"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "wait-node" in done.stdout and "node-address" in done.stdout


def test_every_rendered_command_is_one_the_helper_accepts() -> None:
    """Each local-exec command, with Terraform's interpolations filled, parses."""
    e2e = json.loads(rendered()["e2e.tf.json"])
    commands = [
        step["local-exec"]["command"]
        for resource in e2e["resource"]["terraform_data"].values()
        for step in resource.get("provisioner", [])
    ]
    # 4 templates (built, image saved); create + delete for the one pair of E2E regions
    assert len(commands) == 4 * 2 + 2 * 1
    for command in commands:
        filled = re.sub(r"\$\{[^}]*\}", "123", command)
        words = shlex.split(filled)
        assert words[:2] == ["python3", "123/e2e_api.py"]
        args = e2e_api.parser().parse_args(words[2:])
        assert args.project_id == "123"
    destroys = [
        step["local-exec"]
        for resource in e2e["resource"]["terraform_data"].values()
        for step in resource.get("provisioner", [])
        if step["local-exec"].get("when") == "destroy"
    ]
    # A destroy-time provisioner may only refer to its own resource.
    for step in destroys:
        references = re.findall(r"\$\{([^}]*)\}", step["command"])
        assert all(r.startswith(("self.", "path.module")) for r in references), step


# -- the fast failover's fence in the cloud (geoha.ops.fastfail_cloud) -------------------------


def watcher_config(tmp_path: Path) -> CloudConfig:
    """The witness's rendered watcher file, with Terraform's values filled in."""
    plan = cloud_plan(parse_spec(E2E_WITNESS))
    witness = next(vm for vm in cloud_vms(plan) if vm.kind is VmKind.WITNESS)
    text = render_vm(plan, witness)
    content = next(
        f["content"] for f in yaml.safe_load(text)["write_files"] if f["path"].endswith(".json")
    )
    filled = content.replace("${e2e_project_id}", "7")
    filled = filled.replace("${node_id_delhi_db}", "42").replace("${node_id_chennai_db}", "43")
    path = tmp_path / "fastfail.json"
    path.write_text(filled)
    return CloudConfig.load(path)


def test_the_rendered_watcher_file_loads(tmp_path: Path) -> None:
    config = watcher_config(tmp_path)
    assert config.project_id == "7"
    assert {n: (e.id, e.location) for n, e in config.nodes.items()} == {
        "delhi-db": ("42", "Delhi"),
        "chennai-db": ("43", "Chennai"),
    }
    assert [d.name for d in config.watched.databases] == ["delhi-db", "chennai-db"]
    (tmp_path / "bad.json").write_text('{"watched": {}}')
    with pytest.raises(ValueError, match="not a watcher configuration"):
        CloudConfig.load(tmp_path / "bad.json")


def power_fence(fake: FakeE2E, tmp_path: Path) -> PowerFence:
    return PowerFence(watcher_config(tmp_path), env(fake), httpx.AsyncClient())


def test_the_fence_powers_the_vm_off_and_waits_until_e2e_says_so(
    fake: FakeE2E, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastfail_cloud, "CONFIRM_POLL_S", 0.01)
    fake.nodes["42"] = [{"status": s} for s in ("Running", "Running", "Running", "Powered off")]
    power_fence(fake, tmp_path).power_off("delhi-db")
    actions = [(m, p, b) for m, p, _, b in fake.requests if m == "PUT"]
    assert actions == [("PUT", "/api/v1/nodes/42/actions/", {"type": "power_off"})]
    gets = [p for m, p, _, _ in fake.requests if m == "GET"]
    assert gets == ["/api/v1/nodes/42/"] * 4  # until E2E reports it off
    query = fake.requests[0][2]
    assert query["location"] == ["Delhi"] and query["project_id"] == ["7"]


def test_a_vm_already_off_is_not_asked_again(fake: FakeE2E, tmp_path: Path) -> None:
    fake.nodes["43"] = [{"status": "Powered off"}]
    power_fence(fake, tmp_path).power_off("chennai-db")
    assert [m for m, *_ in fake.requests] == ["GET", "GET"]


def test_a_vm_never_confirmed_off_is_not_fenced(
    fake: FakeE2E, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastfail_cloud, "CONFIRM_POLL_S", 0.01)
    monkeypatch.setattr(fastfail_cloud, "FENCE_CONFIRM_S", 0.05)
    fake.nodes["42"] = [{"status": "Running"}]
    with pytest.raises(e2e_api.ApiError, match="delhi-db still Running"):
        power_fence(fake, tmp_path).power_off("delhi-db")


def test_the_fence_reports_e2e_refusing_without_the_credentials(
    fake: FakeE2E, tmp_path: Path
) -> None:
    fake.status_code = 403
    fence = power_fence(fake, tmp_path)
    problem = asyncio.run(fence("delhi-db", 1.0))
    assert problem is not None and "refused the credentials" in problem
    assert KEY not in problem and TOKEN not in problem
