"""Terraform's own reading of the module `geoha render terraform` writes, without providers.

No provider can be installed without a registry, so Terraform can neither validate nor plan
the module (both need `terraform init`). Two things it does without one:

- `terraform providers` parses every .tf.json file as Terraform configuration: JSON syntax,
  the blocks and meta-arguments Terraform itself defines (variable, output, lifecycle,
  depends_on, ...), and the provider requirements. It does not parse the expressions inside
  resource arguments, nor check references or any provider's schema.
- `terraform console`, in a copy of the module holding only its variables and, as locals,
  every expression of the module that calls templatefile() (a template variable that comes
  from a resource or data source, known only at apply time, given a literal instead),
  evaluates them all with a valid value for every variable: the variables' validation
  rules run, every cloud-init template is filled as at apply time, and each template's
  version is hashed from it. `terraform validate` of that copy (which needs no init, having
  no provider) first: the console shows a failed expression as unknown and exits 0.

terraform comes from no package registry, so set-up cannot install it: where it is missing
these tests are skipped, and `.ci/run` prints whether they ran.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from geoha.cloud.cloudinit import cloud_init_name, template_variables
from geoha.cloud.render_commands import write_tree
from geoha.cloud.terraform import render_terraform
from geoha.cloud.terraform_e2e import (
    TEMPLATE_VARIABLE_SOURCES,
    VERSION_DIGITS,
    start_script,
    template_source,
    vm_resource_name,
)
from geoha.cloud.vms import Vm, cloud_plan, cloud_vms
from geoha.plan import Plan
from geoha.spec import load_spec

pytestmark = [
    pytest.mark.component,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (no package registry offers it): "
        "the offline terraform checks of the rendered module are skipped",
    ),
]

TIMEOUT_S = 60
TEMPLATE_VALUES = {name: f"sample-{name}" for name in TEMPLATE_VARIABLE_SOURCES}
TEMPLATE_VALUES["e2e_project_id"] = "31415"  # its variable's validation wants digits
OTHER_VALUES = {
    "admin_cidr": "203.0.113.7/32",
    "internal_ca_certificate": "-----BEGIN CERTIFICATE-----\nsample\n-----END CERTIFICATE-----\n",
    "internal_ca_key": "-----BEGIN PRIVATE KEY-----\nsample\n-----END PRIVATE KEY-----\n",
}
"""Variables no template reads whose validation a `sample-` value would fail."""
PLAIN_VARIABLE = re.compile(r"var\.\w+")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return cloud_plan(load_spec(None))


@pytest.fixture(scope="module")
def module(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference topology's module, as `geoha render terraform` writes it."""
    out = tmp_path_factory.mktemp("module") / "out"
    write_tree(render_terraform(plan), out)
    return out


def terraform(
    folder: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run terraform in `folder`, cut off from the operator's CLI config, variables, plugin
    cache and home, and from the network's version check."""
    home = folder.parent / f".{folder.name}-terraform-home"
    home.mkdir(exist_ok=True)
    (home / "terraformrc").write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CHECKPOINT_"))}
    env |= {
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(home / "terraformrc"),
        "TF_DATA_DIR": str(home / "data"),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
    command = ["terraform", *args, "-no-color"]
    return subprocess.run(
        command,
        cwd=folder,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def documents(module: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(module.glob("*.tf.json"))}


def test_terraform_parses_the_module_and_its_provider_requirements(module: Path) -> None:
    done = terraform(module, "providers")
    assert done.returncode == 0, done.stderr
    required = documents(module)["main.tf.json"]["terraform"]["required_providers"]
    for provider in required.values():
        line = f"provider[registry.terraform.io/{provider['source']}] {provider['version']}"
        assert line in done.stdout, done.stdout
    assert "provider[terraform.io/builtin/terraform]" in done.stdout  # terraform_data


def test_terraform_refuses_a_module_it_cannot_parse(module: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(module, broken)
    path = broken / "e2e.tf.json"
    doc = json.loads(path.read_text())
    doc["resource"]["e2e_node"]["delhi_db"]["lifecycle"]["ignore_change"] = []
    path.write_text(json.dumps(doc), encoding="utf-8")
    done = terraform(broken, "providers")
    assert done.returncode != 0
    assert "Extraneous JSON object property" in done.stderr
    assert '"ignore_change"' in done.stderr


def templatefile_calls(module: Path) -> dict[str, str]:
    """Every string of the module's resources and data sources that calls templatefile(),
    named after where it stands (`e2e_node__delhi_db__start_script`)."""
    found: dict[str, str] = {}

    def walk(value: Any, where: list[str]) -> None:
        if isinstance(value, str) and "templatefile(" in value:
            found["__".join(where)] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, [*where, key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, [*where, str(index)])

    for doc in documents(module).values():
        for section in ("resource", "data"):
            walk(doc.get(section, {}), [])
    return found


def template_value(plan: Plan, name: str, variables: Mapping[str, str]) -> str:
    """What a template variable is filled with: its `var.` variable's value, or the literal
    standing in for a value known only at apply time."""
    source = template_source(plan, name)
    if PLAIN_VARIABLE.fullmatch(source):
        return variables[source.removeprefix("var.")]
    return f"applied-{name}"


def call_vm(plan: Plan, expression: str) -> Vm:
    """The VM whose cloud-init a templatefile() call fills."""
    vms = [vm for vm in cloud_vms(plan) if f'/cloud-init/{cloud_init_name(vm)}"' in expression]
    assert len(vms) == 1, expression
    return vms[0]


def with_literals(plan: Plan, expression: str) -> str:
    """`expression` with each template variable known only at apply time given its literal."""
    vm = call_vm(plan, expression)
    for name in template_variables(plan, vm):
        source = template_source(plan, name)
        if not PLAIN_VARIABLE.fullmatch(source):
            literal = json.dumps(template_value(plan, name, {}))
            expression = expression.replace(f"{name} = {source}", f"{name} = {literal}")
    return expression


def variable_values(module: Path) -> dict[str, str]:
    """A valid value for every variable of the module without a default."""
    variables = documents(module)["main.tf.json"]["variable"]
    sources = {source.removeprefix("var."): t for t, source in TEMPLATE_VARIABLE_SOURCES.items()}
    values = {}
    for name, declaration in variables.items():
        if "default" not in declaration:
            template = sources.get(name)
            values[name] = TEMPLATE_VALUES[template] if template else f"sample-{name}"
    return values | {k: v for k, v in OTHER_VALUES.items() if k in values}


def evaluate(plan: Plan, module: Path, calls: Mapping[str, str], folder: Path) -> Any:
    """Terraform's values of `calls` (local name -> expression), evaluated in `folder`: a copy
    of the module's variables and cloud-init templates, with `calls` as its locals."""
    variables = documents(module)["main.tf.json"]["variable"]
    version = documents(module)["main.tf.json"]["terraform"]["required_version"]
    folder.mkdir()
    shutil.copytree(module / "cloud-init", folder / "cloud-init")
    doc = {
        "terraform": {"required_version": version},
        "variable": variables,
        "locals": {name: with_literals(plan, expression) for name, expression in calls.items()},
    }
    (folder / "main.tf.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (folder / "values.tfvars.json").write_text(json.dumps(variable_values(module)))
    # The console shows a failed expression as "(known after apply)" and exits 0 all the
    # same; validate (every variable unknown) exits 1 on it.
    checked = terraform(folder, "validate")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    # One console call for all, printed as one quoted JSON string (sensitive: the passwords).
    entries = ", ".join(f"{name} = local.{name}" for name in calls)
    expression = f"nonsensitive(jsonencode({{{entries}}}))\n"
    done = terraform(folder, "console", "-var-file=values.tfvars.json", stdin=expression)
    assert done.returncode == 0 and done.stdout.startswith('"'), done.stderr + done.stdout
    return json.loads(json.loads(done.stdout))


def templatefile(text: str, values: Mapping[str, str]) -> str:
    """What Terraform's templatefile must make of a geoha template: each placeholder `${name}`
    filled, the escapes `$${` and `%%{` undone."""
    filled = re.sub(r"(?<!\$)\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    return filled.replace("$${", "${").replace("%%{", "%{")


def expected_script(plan: Plan, vm: Vm, module: Path) -> str:
    text = (module / "cloud-init" / cloud_init_name(vm)).read_text(encoding="utf-8")
    variables = variable_values(module)
    names = template_variables(plan, vm)
    return templatefile(text, {name: template_value(plan, name, variables) for name in names})


def script_local(plan: Plan, vm: Vm) -> str:
    """The local name of a VM's start script in `templatefile_calls`: an E2E node's
    start script, or an AWS instance's user data."""
    if plan.spec.regions[vm.region].cloud.on_aws:
        return f"aws_instance__{vm_resource_name(vm)}__user_data_base64"
    return f"e2e_node__{vm_resource_name(vm)}__start_script"


def script_of(plan: Plan, vm: Vm, values: Mapping[str, str]) -> str:
    """A VM's filled cloud-init: AWS user data is gzip-compressed, then base64-encoded."""
    value = values[script_local(plan, vm)]
    if plan.spec.regions[vm.region].cloud.on_aws:
        return gzip.decompress(base64.b64decode(value, validate=True)).decode("utf-8")
    return value


def test_terraform_fills_every_cloud_init_template(
    plan: Plan, module: Path, tmp_path: Path
) -> None:
    calls = templatefile_calls(module)
    every_call = sum(p.read_text().count("templatefile(") for p in module.glob("*.tf.json"))
    assert len(calls) == every_call  # one call per string: none left unevaluated
    values = evaluate(plan, module, calls, tmp_path / "console")
    vms = cloud_vms(plan)
    assert any(plan.spec.regions[vm.region].cloud.on_aws for vm in vms)  # the witness
    for vm in vms:
        script = script_of(plan, vm, values)
        assert script.startswith("#cloud-config\n"), vm.name
        assert isinstance(yaml.safe_load(script), dict), vm.name
        assert script == expected_script(plan, vm, module), vm.name
    for name in set(values) - {script_local(plan, vm) for vm in vms}:
        # Whatever else calls templatefile is a template's version: its filled script's hash.
        vm = call_vm(plan, calls[name])
        assert start_script(plan, vm) in calls[name], name
        digest = hashlib.sha256(values[script_local(plan, vm)].encode()).hexdigest()
        assert values[name] == digest[:VERSION_DIGITS], name


def test_terraform_refuses_a_template_with_a_placeholder_it_is_not_given(
    plan: Plan, module: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(module, broken)
    with (broken / "cloud-init" / "delhi-web.yaml").open("a", encoding="utf-8") as file:
        file.write("# ${nowhere}\n")
    call = templatefile_calls(broken)["e2e_node__delhi_web_template__start_script"]
    with pytest.raises(AssertionError, match='vars map does not contain key "nowhere"'):
        evaluate(plan, broken, {"delhi_web": call}, tmp_path / "console")
