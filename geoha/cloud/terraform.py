"""`geoha render terraform`: Terraform JSON for E2E Networks and Route 53, from the cloud plan.

Written into one folder (a Terraform root module):

    main.tf.json            required providers, providers, variables, outputs
    e2e.tf.json             E2E resources and the address sources (geoha.cloud.terraform_e2e)
    route53.tf.json         Route 53 resources (geoha.cloud.terraform_route53)
    aws.tf.json             a witness region's AWS instance, if one is on AWS
                            (geoha.cloud.terraform_aws)
    cloud-init/*.yaml       every VM's cloud-init (geoha.cloud.cloudinit), as templates
    e2e_api.py              the E2E API steps the provider lacks (geoha.cloud.e2e_api)
    terraform.tfvars.example  the non-secret variables to fill in

No secret is rendered: passwords, the E2E API key and token and the SSH key are
sensitive variables, set at apply time (TF_VAR_... environment variables).
"""

from __future__ import annotations

import inspect
import ipaddress
import json
from pathlib import Path
from typing import Any

from geoha.cloud import e2e_api
from geoha.cloud.cloudinit import render_cloud_init
from geoha.cloud.schema import schema_table
from geoha.cloud.terraform_aws import aws_documents, provider_block
from geoha.cloud.terraform_e2e import (
    HELPER,
    e2e_resources,
    elastic_ip,
    lookups,
    start_script,
    tf_name,
)
from geoha.cloud.terraform_route53 import route53_resources
from geoha.cloud.vms import cloud_vms, internet_witnesses, witness_address_variable
from geoha.plan import Plan
from geoha.render.files import File
from geoha.spec import Spec


def _pinned(provider: str) -> dict[str, str]:
    """A provider's `source` and `version` as the provider schema table pins them (the
    table says why each version is what it is, and what of it was read)."""
    entry = schema_table()["providers"][provider]
    return {"source": entry["source"], "version": entry["version"]}


E2E_PROVIDER = _pinned("e2e")
AWS_PROVIDER = _pinned("aws")
EXTERNAL_PROVIDER = _pinned("external")
REQUIRED_TERRAFORM = _pinned("terraform")["version"]
"""terraform_data, which waits for templates and peers the networks, came with 1.4."""
PASSWORD_PATTERN = "^[A-Za-z0-9._~+/=-]{16,}$"
"""Passwords land in a systemd EnvironmentFile and a pgpass file: no quotes, colons, spaces."""


def secret(description: str) -> dict[str, Any]:
    return {"type": "string", "sensitive": True, "description": description}


def password(name: str, what: str) -> dict[str, Any]:
    return {
        **secret(f"{what} (at least 16 of A-Z a-z 0-9 . _ ~ + / = -)"),
        "validation": [
            {
                "condition": f'${{can(regex("{PASSWORD_PATTERN}", var.{name}))}}',
                "error_message": "At least 16 characters of A-Z a-z 0-9 . _ ~ + / = -.",
            }
        ],
    }


def witness_variables(spec: Spec) -> dict[str, Any]:
    """The address of each witness VM run outside E2E (`cloud.external`), checked to be an
    IPv4 address inside the region's network."""
    found: dict[str, Any] = {}
    for name, region in spec.regions.items():
        if not region.cloud.external:
            continue
        net = ipaddress.IPv4Network(region.cidr)
        variable = witness_address_variable(name)
        in_net = f'cidrhost(format("%s/{net.prefixlen}", var.{variable}), 0)'
        found[variable] = {
            "type": "string",
            "description": f"Private address of {name}'s witness VM (run outside E2E), inside "
            f"{net} and reachable from the data regions' networks",
            "validation": [
                {
                    "condition": f'${{try({in_net}, "") == "{net.network_address}"}}',
                    "error_message": f"An IPv4 address inside {net}.",
                }
            ],
        }
    return found


def pem_variable(description: str, marker: str, sensitive: bool) -> dict[str, Any]:
    """A PEM block given as a variable, checked to hold `marker` (`CERTIFICATE`, ...)."""
    return {
        "type": "string",
        "sensitive": sensitive,
        "description": description,
        "validation": [
            {
                "condition": f'${{can(regex("-----BEGIN [A-Z ]*{marker}-----", '
                f"var.{CA_VARIABLES[marker]}))}}",
                "error_message": f"A PEM {marker.lower()}, as `geoha ca --cloud DIR` writes it.",
            }
        ],
    }


CA_VARIABLES = {"CERTIFICATE": "internal_ca_certificate", "PRIVATE KEY": "internal_ca_key"}
"""The internal CA's variables by what their PEM holds (`geoha ca --cloud`)."""


def tls_variables(spec: Spec) -> dict[str, Any]:
    """The deployment's internal CA: every VM that verifies servers gets its certificate;
    those that serve internal TLS get its key too, and sign their own certificates at boot
    for the address E2E gives them (geoha.cloud.node_certificates)."""
    if not spec.security.internal_tls:
        return {}
    return {
        CA_VARIABLES["CERTIFICATE"]: pem_variable(
            "The internal CA's certificate (PEM)", "CERTIFICATE", sensitive=False
        ),
        CA_VARIABLES["PRIVATE KEY"]: pem_variable(
            "The internal CA's key (PEM): database and witness VMs sign their certificates "
            "with it at boot",
            "PRIVATE KEY",
            sensitive=True,
        ),
    }


def variables(spec: Spec) -> dict[str, Any]:
    """Every input; the sensitive ones are never written anywhere by geoha."""
    return (
        witness_variables(spec)
        | tls_variables(spec)
        | {
            "e2e_api_key": secret("E2E MyAccount API key"),
            "e2e_auth_token": secret("E2E MyAccount API bearer token"),
            "e2e_project_id": {
                "type": "string",
                "description": "E2E project ID",
                "validation": [
                    {
                        "condition": '${can(regex("^[0-9]+$", var.e2e_project_id))}',
                        "error_message": "The numeric ID of the E2E project.",
                    }
                ],
            },
            "ssh_public_key": secret("SSH public key installed on every VM"),
            "admin_cidr": {
                "type": "string",
                "description": "Network allowed to reach the VMs over SSH (e.g. 203.0.113.7/32)",
                "validation": [
                    {
                        "condition": "${can(cidrhost(var.admin_cidr, 0))}",
                        "error_message": "An IPv4 CIDR such as 203.0.113.7/32.",
                    }
                ],
            },
            "db_superuser_password": password("db_superuser_password", "PostgreSQL superuser"),
            "db_replication_password": password("db_replication_password", "replication user"),
            "db_app_password": password("db_app_password", "application user"),
            "patroni_rest_password": password(
                "patroni_rest_password", "Patroni REST API (basic auth of its unsafe endpoints)"
            ),
            "app_source_url": {
                "type": "string",
                "description": "URL of a .tar.gz of the geoha source with app/web/dist built",
            },
            "frontend_ssl_certificate_id": {
                "type": "string",
                "description": "ID of the TLS certificate uploaded to E2E for the frontend LBs",
            },
            "route53_zone_id": {
                "type": "string",
                "description": "Route 53 hosted zone of the zone",
            },
            "aws_region": {
                "type": "string",
                "default": "us-east-1",
                "description": "AWS API region (Route 53 is global)",
            },
            "vpc_peering": {
                "type": "bool",
                "default": True,
                "description": "Peer every pair of regions' VPCs through E2E's API (false: "
                "you link the networks yourself, see docs/CLOUD.md)",
            },
        }
    )


def outputs(plan: Plan) -> dict[str, Any]:
    result: dict[str, Any] = {
        f"entry_{tf_name(region)}": {
            "description": f"Public address of {region}'s frontend LB",
            "value": f"${{e2e_loadbalancer.{tf_name(region, 'fe')}.public_ip}}",
        }
        for region in plan.spec.data_regions
    }
    result["url"] = {
        "description": "The application, behind Route 53 weighted DNS",
        "value": f"http://{plan.spec.dns.fqdn}/",
    }
    for region in internet_witnesses(plan.spec):
        result[f"witness_{tf_name(region)}"] = {
            "description": f"Public address (Elastic IP) of {region}'s witness on AWS",
            "value": f"${{{elastic_ip(region)}}}",
        }
    for vm in cloud_vms(plan):
        if plan.spec.regions[vm.region].cloud.external:
            result[f"cloud_init_{tf_name(vm.name)}"] = {
                "description": f"User data of {vm.name}, the VM you run outside E2E "
                "(terraform output -raw ...)",
                "value": f"${{{start_script(plan, vm)}}}",
                # With internal TLS it holds the CA's key: the witness signs its certificate.
                "sensitive": plan.tls,
            }
    return result


def aws_providers(plan: Plan) -> dict[str, Any] | list[dict[str, Any]]:
    """The AWS provider of Route 53 (`var.aws_region`); one more per witness region on
    AWS, in its region, under the region's name as alias."""
    default = {"region": "${var.aws_region}"}
    witnesses = internet_witnesses(plan.spec)
    if not witnesses:
        return default
    return [default, *(provider_block(plan.spec, region) for region in witnesses)]


def main_document(plan: Plan) -> dict[str, Any]:
    return {
        "terraform": {
            "required_version": REQUIRED_TERRAFORM,
            "required_providers": {
                "e2e": E2E_PROVIDER,
                "aws": AWS_PROVIDER,
                "external": EXTERNAL_PROVIDER,
            },
        },
        "provider": {
            "e2e": {"api_key": "${var.e2e_api_key}", "auth_token": "${var.e2e_auth_token}"},
            "aws": aws_providers(plan),
        },
        "variable": variables(plan.spec),
        "output": outputs(plan),
    }


def tfvars_example(plan: Plan) -> str:
    lines = [
        f"# Non-secret inputs of the '{plan.spec.name}' deployment: copy to terraform.tfvars.",
        "# Secrets come from the environment, never from a file in this folder:",
        "#   TF_VAR_e2e_api_key  TF_VAR_e2e_auth_token  TF_VAR_ssh_public_key",
        "#   TF_VAR_db_superuser_password  TF_VAR_db_replication_password  TF_VAR_db_app_password",
        "#   TF_VAR_patroni_rest_password",
        "#   TF_VAR_internal_ca_key (and TF_VAR_internal_ca_certificate): `geoha ca --cloud DIR`",
        "# and AWS credentials as the AWS provider reads them (AWS_ACCESS_KEY_ID, ...).",
        'e2e_project_id              = ""',
        'admin_cidr                  = ""',
        'app_source_url              = ""',
        'frontend_ssl_certificate_id = ""',
        'route53_zone_id             = ""',
        "vpc_peering                 = true # false if you link the regions' networks yourself",
    ]
    for name, region in plan.spec.regions.items():
        if region.cloud.external:
            lines.append(f'{witness_address_variable(name)} = "" # inside {region.cidr}')
    return "\n".join(lines) + "\n"


def json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def terraform_documents(plan: Plan) -> dict[str, dict[str, Any]]:
    """File name -> Terraform JSON document."""
    documents = {
        "main.tf.json": main_document(plan),
        "e2e.tf.json": {
            "resource": e2e_resources(plan),
            "data": {"external": lookups(plan)},
        },
        "route53.tf.json": {"resource": route53_resources(plan)},
    }
    resources, data = aws_documents(plan)
    if resources:
        documents["aws.tf.json"] = {"resource": resources, "data": data}
    return documents


def render_terraform(plan: Plan) -> list[File]:
    """Every file of the Terraform root module, relative to the output folder."""
    files = [File(Path(name), json_text(doc)) for name, doc in terraform_documents(plan).items()]
    files += render_cloud_init(plan, "cloud-init")
    files.append(File(Path(HELPER), inspect.getsource(e2e_api)))
    files.append(File(Path("terraform.tfvars.example"), tfvars_example(plan)))
    return files
