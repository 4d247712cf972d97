"""A node's config and environment, whatever its role: the local runtime and the
cloud render both come through here.

Which config a role runs from is the role table's fact (geoha.roles); how each
kind of config file is rendered is this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from geoha.db_access import Secrets
from geoha.plan import Node, Plan
from geoha.render.api import api_env, render_api
from geoha.render.caddy import render_caddy
from geoha.render.etcd import render_etcd
from geoha.render.files import File
from geoha.render.haproxy import render_haproxy
from geoha.render.patroni import render_patroni
from geoha.roles import ROLES, ConfigFile, Environment, home_environment

Renderer = Callable[[Plan, Node, Secrets], list[File]]

RENDERERS: Mapping[ConfigFile, Renderer] = {
    ConfigFile.ETCD: lambda plan, node, _: render_etcd(plan, node),
    ConfigFile.PATRONI: render_patroni,
    ConfigFile.API_ENV: lambda plan, node, _: render_api(plan, node),
    ConfigFile.CADDYFILE: lambda plan, node, _: render_caddy(plan, node),
    ConfigFile.HAPROXY: lambda plan, node, _: render_haproxy(plan, node),
}
"""The renderer of each kind of config file. Only Patroni's config holds passwords."""

ENVIRONMENT_FILES: Mapping[ConfigFile, Callable[[Plan, Node], dict[str, str]]] = {
    ConfigFile.API_ENV: api_env,
}
"""The variables of each kind of config file that is a KEY=VALUE environment file."""


def render_config(plan: Plan, node: Node, secrets: Secrets) -> list[File]:
    """The node's config files, as its role's renderer writes them for this plan."""
    return RENDERERS[ROLES[node.role].config](plan, node, secrets)


def process_environment(plan: Plan, node: Node) -> dict[str, str]:
    """The variables the node's process gets on top of its supervisor's environment."""
    role = ROLES[node.role]
    match role.environment:
        case Environment.INHERITED:
            return {}
        case Environment.CONFIG_FILE:
            return ENVIRONMENT_FILES[role.config](plan, node)
        case Environment.NODE_HOME:
            return home_environment(node.dir)
