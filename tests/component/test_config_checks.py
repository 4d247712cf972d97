"""Each rendered config passes its own program's check, offline.

- `systemd-analyze verify` on every systemd unit a cloud VM's cloud-init writes, in a tree
  standing in for the VM (the units, stand-ins for the programs a VM has, the targets its
  systemd provides). verify exits 0 on an unknown directive or a value it cannot parse (it
  ignores the line, as systemd would), so any output at all fails the check.
- `caddy adapt --validate` on the web VMs' Caddyfile: adapted to JSON and loaded by Caddy's
  modules, without starting a server.
- `haproxy -c` on every HAProxy config the local runtime renders for the reference topology
  (the cloud has none: E2E's load balancers replace it); the configs are the golden files
  but for the run directory, a temporary one holding the frontends' certificates, made as
  the runtime makes them. (tests/component/test_lb_admin.py runs one of them for real.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from geoha.cloud.cloudinit import render_vm
from geoha.cloud.vms import CLOUD_TOOLS, Vm, cloud_vms
from geoha.plan import NodeRole, Tools, expand
from geoha.render.files import write_files
from geoha.render.haproxy import render_haproxy
from geoha.runtime.certificates import ensure_certificates
from geoha.spec import load_spec
from tests.unit.test_cloud_init import filled, parsed, reference, rendered_configs
from tests.unit.test_render_golden import GOLDEN, reference_plan

pytestmark = pytest.mark.component

TIMEOUT_S = 60
UNIT_DIR = "/etc/systemd/system/"
VM_PROGRAMS = (
    CLOUD_TOOLS.patroni,
    CLOUD_TOOLS.etcd,
    CLOUD_TOOLS.caddy,
    CLOUD_TOOLS.python,
    "/usr/bin/python3",  # Debian's, which runs the boot-time address script
    "/usr/bin/kill",  # procps, on every Debian/Ubuntu: Patroni's unit reloads with it
    "/bin/sh",  # the AWS witness's metadata guard runs its iptables command through it
)
"""What a VM has to run: its packages' programs and geoha's virtualenv's."""
VM_TARGETS = (
    "sysinit.target",
    "basic.target",
    "shutdown.target",
    "network-online.target",
    "multi-user.target",
)
"""The units of a VM's systemd that ours name, or depend on by default."""
CADDY_EXPECTED_WARNINGS = {"automatic HTTPS is completely disabled for server"}
"""`auto_https off`: TLS ends at E2E's load balancer."""


def program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh")
    return path


def vm_files(vm: Vm) -> list[dict[str, Any]]:
    """The VM's write_files entries, as Terraform fills its cloud-init."""
    entries: list[dict[str, Any]] = parsed(filled(render_vm(reference(), vm)))["write_files"]
    return entries


def vm_tree(root: Path, files: list[dict[str, Any]]) -> list[Path]:
    """A stand-in for the VM's filesystem holding its units; returns the units' paths."""
    for path in VM_PROGRAMS:
        stand_in = root / path.lstrip("/")
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
        stand_in.chmod(0o755)
    targets = root / "usr/lib/systemd/system"
    targets.mkdir(parents=True)
    for target in VM_TARGETS:
        (targets / target).write_text("[Unit]\nDescription=stand-in\n", encoding="utf-8")
    units = []
    for entry in files:
        if entry["path"].startswith(UNIT_DIR):
            unit = root / entry["path"].lstrip("/")
            unit.parent.mkdir(parents=True, exist_ok=True)
            unit.write_text(entry["content"], encoding="utf-8")
            units.append(unit)
    return units


def verify(root: Path, units: list[Path]) -> subprocess.CompletedProcess[str]:
    command = [program("systemd-analyze"), "verify", f"--root={root}", "--man=no"]
    command += ["--generators=no", *map(str, units)]
    env = os.environ | {"SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


@pytest.mark.parametrize("vm", cloud_vms(reference()), ids=lambda vm: vm.name)
def test_systemd_analyze_verify_accepts_every_unit_of_every_vm(vm: Vm, tmp_path: Path) -> None:
    units = vm_tree(tmp_path, vm_files(vm))
    assert units, vm.name
    done = verify(tmp_path, units)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_systemd_analyze_verify_reports_a_misspelt_directive_and_a_missing_program(
    tmp_path: Path,
) -> None:
    vm = next(vm for vm in cloud_vms(reference()) if vm.name == "delhi-db")
    units = vm_tree(tmp_path, vm_files(vm))
    patroni = next(u for u in units if u.name == "geoha-patroni.service")
    text = patroni.read_text()
    patroni.write_text(text.replace("\nRestart=", "\nRestatr="))
    done = verify(tmp_path, units)
    assert "Unknown key 'Restatr' in section [Service]" in done.stderr
    assert done.returncode == 0  # only a warning: the check fails on any output
    patroni.write_text(text.replace(CLOUD_TOOLS.patroni, "/usr/bin/patroni"))
    done = verify(tmp_path, units)
    assert done.returncode != 0
    assert "Command /usr/bin/patroni is not executable" in done.stderr


def caddy_adapt(path: Path) -> subprocess.CompletedProcess[str]:
    command = [program("caddy"), "adapt", "--config", str(path), "--adapter", "caddyfile"]
    home = path.parent
    env = os.environ | {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_DATA_HOME": str(home)}
    return subprocess.run(
        [*command, "--validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def caddy_warnings(stderr: str) -> list[str]:
    """What Caddy logged, apart from the warnings the Caddyfile asks for."""
    found = []
    for line in stderr.splitlines():
        try:
            message = json.loads(line).get("msg")
        except (ValueError, AttributeError):
            message = None
        if message not in CADDY_EXPECTED_WARNINGS:
            found.append(line)
    return found


def web_vms() -> list[Vm]:
    return [vm for vm in cloud_vms(reference()) if any(n.role is NodeRole.WEB for n in vm.nodes)]


def caddyfile(vm: Vm) -> str:
    configs = rendered_configs(filled(render_vm(reference(), vm)))
    web = next(n for n in vm.nodes if n.role is NodeRole.WEB)
    return configs[str(web.config_path)]


@pytest.mark.parametrize("vm", web_vms(), ids=lambda vm: vm.name)
def test_caddy_adapts_and_validates_the_cloud_caddyfile(vm: Vm, tmp_path: Path) -> None:
    path = tmp_path / "Caddyfile"
    path.write_text(caddyfile(vm), encoding="utf-8")
    done = caddy_adapt(path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["apps"]["http"]["servers"]
    assert caddy_warnings(done.stderr) == []


def test_caddy_adapt_reports_a_misspelt_directive_and_an_unformatted_file(
    tmp_path: Path,
) -> None:
    text = caddyfile(web_vms()[0])
    path = tmp_path / "Caddyfile"
    path.write_text(text.replace("encode gzip", "encod gzip"), encoding="utf-8")
    done = caddy_adapt(path)
    assert done.returncode != 0
    assert "unrecognized directive: encod" in done.stderr
    path.write_text(text.replace("\t", "  "), encoding="utf-8")
    done = caddy_adapt(path)
    assert done.returncode == 0
    assert "Caddyfile input is not formatted" in "".join(caddy_warnings(done.stderr))


def haproxy_check(path: Path) -> subprocess.CompletedProcess[str]:
    command = [program("haproxy"), "-c", "-f", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def local_lb_configs(run_dir: Path) -> list[Path]:
    """The reference topology's LB configs as the local runtime writes them under `run_dir`,
    with the frontends' certificates."""
    plan = expand(load_spec(None), run_dir, Tools(patroni="/p", etcd="/e", pg_bin_dir="/pg"))
    paths = []
    for node in plan.nodes:
        if node.role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
            write_files(render_haproxy(plan, node))
            ensure_certificates(plan, node, None)
            paths.append(node.config_path)
    return paths


def test_haproxy_accepts_every_local_lb_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir = tmp_path_factory.mktemp("run")  # short: the admin socket's path has a limit
    golden_run_dir = str(reference_plan().run_dir)
    paths = local_lb_configs(run_dir)
    assert len(paths) == len(list(GOLDEN.glob("*.haproxy.cfg"))) == 4
    for path in paths:
        golden = GOLDEN / f"{path.parent.name}.haproxy.cfg"
        assert path.read_text().replace(str(run_dir), golden_run_dir) == golden.read_text()
        done = haproxy_check(path)
        assert (done.returncode, done.stdout, done.stderr) == (
            0,
            "Configuration file is valid\n",
            "",
        ), path.parent.name


def test_haproxy_check_reports_a_missing_certificate_and_a_misspelt_keyword(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    frontend = next(p for p in local_lb_configs(run_dir) if p.parent.name == "delhi-fe")
    (frontend.parent / "tls.pem").unlink()
    done = haproxy_check(frontend)
    assert done.returncode != 0
    assert "tls.pem" in done.stdout + done.stderr
    backend = run_dir / "nodes" / "delhi-be" / "haproxy.cfg"
    backend.write_text(backend.read_text().replace("option httpchk", "option httpchek"))
    done = haproxy_check(backend)
    assert done.returncode != 0
    assert "unknown option 'httpchek'" in done.stderr
