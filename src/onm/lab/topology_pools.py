"""The `pools` of a topology file (seed 0: several nodes behind one virtual IP), read strictly.

A pool is named uniquely within its network, takes an address of the network that no node
holds, and lists members that are nodes of that network, each once. Its settings (`policy`,
`scope`, `all_down`, `check`) are kept as the API takes them and checked by the manager's own
rule (`onm.model.pool_settings`), with the file's line and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import yaml

from onm.errors import InvalidInputError
from onm.lab.topology_reader import Reader
from onm.lab.topology_spec import NetworkSpec, NodeSpec, PoolSpec
from onm.model import pool_settings

POOL: Final = {
    "name": True,
    "network": True,
    "ip": True,
    "members": False,
    "policy": False,
    "scope": False,
    "all_down": False,
    "check": False,
}
CHECK: Final = {
    "kind": True,
    "port": False,
    "path": False,
    "interval": False,
    "timeout": False,
    "rise": False,
    "fall": False,
}


def read_pools(
    read: Reader,
    items: list[yaml.Node],
    networks: Mapping[str, NetworkSpec],
    nodes: list[NodeSpec],
) -> list[PoolSpec]:
    found: list[PoolSpec] = []
    names: set[tuple[str, str]] = set()
    owners = {(n.network, n.ip): n.name for n in nodes}
    for i, item in enumerate(items):
        path = f"pools[{i}]"
        keys = read.mapping(item, path, POOL)
        name = read.name(keys["name"], f"{path}.name")
        network = read.reference(keys["network"], f"{path}.network", "network", networks)
        if (network, name) in names:
            raise read.error(keys["name"], f"{path}.name", f"pool {name!r} is defined twice")
        names.add((network, name))
        ip = read.node_ip(keys["ip"], f"{path}.ip", networks[network])
        if (network, ip) in owners:
            reason = f"{ip} is node {owners[network, ip]}'s address in network {network!r}"
            raise read.error(keys["ip"], f"{path}.ip", reason)
        owners[network, ip] = f"pool {name}"
        members = _members(read, keys.get("members"), f"{path}.members", network, nodes)
        settings = _settings(read, keys, path)
        found.append(PoolSpec(name, network, ip, tuple(members), settings))
    return found


def _members(
    read: Reader, node: yaml.Node | None, where: str, network: str, nodes: list[NodeSpec]
) -> list[str]:
    members: list[str] = []
    for j, value in enumerate(read.sequence(node, where)):
        member = read.name(value, f"{where}[{j}]")
        spec = next((n for n in nodes if n.name == member), None)
        if spec is None or spec.network != network:
            reason = f"{member!r} is no node of network {network!r}"
            raise read.error(value, f"{where}[{j}]", reason)
        if member in members:
            raise read.error(value, f"{where}[{j}]", f"{member!r} is listed twice")
        members.append(member)
    return members


def _settings(read: Reader, keys: dict[str, yaml.Node], path: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key in ("policy", "scope", "all_down"):
        if key in keys:
            settings[key] = read.text(keys[key], f"{path}.{key}")
    if "check" in keys:
        where = f"{path}.check"
        parts = read.mapping(keys["check"], where, CHECK)
        check: dict[str, Any] = {"kind": read.text(parts["kind"], f"{where}.kind")}
        if "path" in parts:
            check["path"] = read.text(parts["path"], f"{where}.path")
        for key in ("port", "rise", "fall"):
            if key in parts:
                check[key] = read.integer(parts[key], f"{where}.{key}", 0, 65535)
        for key in ("interval", "timeout"):
            if key in parts:
                check[key] = read.number(parts[key], f"{where}.{key}")
        settings["check"] = check
    try:
        pool_settings.check_settings(settings)
    except InvalidInputError as exc:
        field = exc.field.split(".")[-1]
        node = keys.get(exc.field) or keys.get("check") or keys["name"]
        if exc.field.startswith("check.") and "check" in keys:
            inner = read.mapping(keys["check"], f"{path}.check", CHECK)
            node = inner.get(field) or keys["check"]
        raise read.error(node, f"{path}.{exc.field}", exc.reason) from None
    return settings
