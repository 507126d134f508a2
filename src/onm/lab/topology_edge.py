"""The edge keys of a topology file (seed 1; DESIGN.md section 5), read strictly: `externals`
(networks outside the overlay, with their `servers`), `edge_pools` (a network's gateways on edge
hosts) and `routes` (external prefixes through an edge pool).

The rules, beyond each value's own kind:

- an external network is an IPv4 CIDR of at most /30 (the manager's rule); a server's address is
  a host address of it, and no other server's there. A server's name is unique among the
  servers, nodes and hosts, since `onm lab exec NAME` finds a namespace by it.
- an edge pool is named uniquely within its network. Its settings are the model's enumerations
  and numbers, checked whole by the manager's own rule (`onm.manager.edge_pools.settle`); only
  what the file sets is kept, so the manager's defaults apply. `split_above` splits flows, which
  only a pool without NAT may do (`nat: none`): the loader says so before the manager would.
- a gateway runs on an edge host; its external address is a host address of that host's
  external network, no other gateway's in the file, and no server's.
- a route's prefix is an IPv4 CIDR outside its network's own CIDRs, overlapping none of the
  network's other routes, and its edge pool is one of the network's own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

import yaml

from onm.errors import InvalidInputError
from onm.lab.topology_reader import Reader
from onm.lab.topology_spec import (
    EdgePoolSpec,
    ExternalSpec,
    GatewaySpec,
    HostSpec,
    NetworkSpec,
    NodeSpec,
    RouteSpec,
    ServerSpec,
)
from onm.model.edge_pool import Choice, HashField, Mode, Nat
from onm.model.host import HostRole
from onm.model.ids import NetworkId

EXTERNAL: Final = {"name": True, "cidr": True, "servers": False}
SERVER: Final = {"name": True, "ip": True}
EDGE_POOL: Final = {
    "name": True,
    "network": True,
    "nat": False,
    "hash": False,
    "choice": False,
    "mode": False,
    "split_above": False,
    "probe_interval": False,
    "gateways": False,
}
GATEWAY: Final = {"name": True, "host": True, "external_ip": True}
ROUTE: Final = {"network": True, "prefix": True, "edge_pool": True}
MAX_EXTERNAL_PREFIXLEN: Final = 30
"""An external network must leave room for gateways (as `onm.manager.externals` requires)."""

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _host_address(
    read: Reader, node: yaml.Node, path: str, external: ExternalSpec
) -> ipaddress.IPv4Address:
    """An address inside the external network, not its network or broadcast address."""
    ip = read.ipv4(node, path)
    if ip not in external.cidr:
        reason = f"{ip} is not inside external network {external.name!r} ({external.cidr})"
        raise read.error(node, path, reason)
    if ip in (external.cidr.network_address, external.cidr.broadcast_address):
        reason = f"{ip} is the network or broadcast address of {external.cidr}"
        raise read.error(node, path, reason)
    return ip


# --- externals and their servers -----------------------------------------------------------
def read_externals(
    read: Reader, items: list[yaml.Node]
) -> tuple[dict[str, ExternalSpec], dict[str, tuple[yaml.Node, str]]]:
    """The external networks by name, and each server's name node and key path (for
    `check_server_names`, once the hosts and nodes are read)."""
    found: dict[str, ExternalSpec] = {}
    server_names: dict[str, tuple[yaml.Node, str]] = {}
    for i, item in enumerate(items):
        path = f"externals[{i}]"
        keys = read.mapping(item, path, EXTERNAL)
        name = read.name(keys["name"], f"{path}.name")
        read.unique(keys["name"], f"{path}.name", "external network", name, set(found))
        cidr = read.ipv4_network(keys["cidr"], f"{path}.cidr")
        if cidr.prefixlen > MAX_EXTERNAL_PREFIXLEN:
            reason = f"{cidr} is too small for gateways (at most /{MAX_EXTERNAL_PREFIXLEN})"
            raise read.error(keys["cidr"], f"{path}.cidr", reason)
        external = ExternalSpec(name, cidr)
        servers: list[ServerSpec] = []
        owners: dict[ipaddress.IPv4Address, str] = {}
        where = f"{path}.servers"
        for j, value in enumerate(read.sequence(keys.get("servers"), where)):
            spath = f"{where}[{j}]"
            parts = read.mapping(value, spath, SERVER)
            server = read.name(parts["name"], f"{spath}.name")
            read.unique(parts["name"], f"{spath}.name", "server", server, set(server_names))
            server_names[server] = (parts["name"], f"{spath}.name")
            ip = _host_address(read, parts["ip"], f"{spath}.ip", external)
            if ip in owners:
                reason = f"{ip} is server {owners[ip]}'s address in external network {name!r}"
                raise read.error(parts["ip"], f"{spath}.ip", reason)
            owners[ip] = server
            servers.append(ServerSpec(server, ip))
        found[name] = replace(external, servers=tuple(servers))
    return found, server_names


def check_server_names(
    read: Reader,
    server_names: Mapping[str, tuple[yaml.Node, str]],
    hosts: Mapping[str, HostSpec],
    nodes: list[NodeSpec],
) -> None:
    """No server is named as a node or a host: `onm lab exec NAME` must find one namespace."""
    node_names = {n.name for n in nodes}
    for name, (node, path) in server_names.items():
        for kind, names in (("node", node_names), ("host", hosts)):
            if name in names:
                reason = f"{name!r} is a {kind}'s name too (`onm lab exec` runs by name)"
                raise read.error(node, path, reason)


# --- edge pools and their gateways ---------------------------------------------------------
def read_edge_pools(
    read: Reader,
    items: list[yaml.Node],
    networks: Mapping[str, NetworkSpec],
    hosts: Mapping[str, HostSpec],
    externals: Mapping[str, ExternalSpec],
) -> list[EdgePoolSpec]:
    found: list[EdgePoolSpec] = []
    names: set[tuple[str, str]] = set()
    taken: dict[ipaddress.IPv4Address, str] = {
        s.ip: f"server {s.name}'s address" for x in externals.values() for s in x.servers
    }
    for i, item in enumerate(items):
        path = f"edge_pools[{i}]"
        keys = read.mapping(item, path, EDGE_POOL)
        name = read.name(keys["name"], f"{path}.name")
        network = read.reference(keys["network"], f"{path}.network", "network", networks)
        if (network, name) in names:
            reason = f"edge pool {name!r} is defined twice in network {network!r}"
            raise read.error(keys["name"], f"{path}.name", reason)
        names.add((network, name))
        spec = _settings(read, keys, path, EdgePoolSpec(name, network))
        gateways: list[GatewaySpec] = []
        where = f"{path}.gateways"
        for j, value in enumerate(read.sequence(keys.get("gateways"), where)):
            gateway = _gateway(read, value, f"{where}[{j}]", hosts, externals, taken)
            if any(g.name == gateway.name for g in gateways):
                reason = f"gateway {gateway.name!r} is defined twice in edge pool {name!r}"
                raise read.error(value, f"{where}[{j}].name", reason)
            taken[gateway.external_ip] = (
                f"gateway {gateway.name}'s external address (edge pool {name})"
            )
            gateways.append(gateway)
        found.append(replace(spec, gateways=tuple(gateways)))
    return found


def _settings(
    read: Reader, keys: dict[str, yaml.Node], path: str, pool: EdgePoolSpec
) -> EdgePoolSpec:
    """`pool` with the settings the file gives, checked by the manager's rule."""
    nat = choice = mode = None
    if "nat" in keys:
        nat = read.enumerated(keys["nat"], f"{path}.nat", Nat)
    if "choice" in keys:
        choice = read.enumerated(keys["choice"], f"{path}.choice", Choice)
    if "mode" in keys:
        mode = read.enumerated(keys["mode"], f"{path}.mode", Mode)
    hash_fields = None
    if "hash" in keys:
        hash_fields = _hash_fields(read, keys["hash"], f"{path}.hash")
    split_above = probe_interval = None
    if "probe_interval" in keys:
        probe_interval = read.number(keys["probe_interval"], f"{path}.probe_interval")
    if "split_above" in keys:
        where = f"{path}.split_above"
        split_above = read.number(keys["split_above"], where, "bits per second")
        if nat is not Nat.NONE:
            reason = (
                "only a pool without NAT splits flows (a NAT pool's flows must stay on the "
                "gateway holding their state): give `nat: none`"
            )
            raise read.error(keys["split_above"], where, reason)
    spec = replace(
        pool,
        nat=nat,
        hash_fields=hash_fields,
        choice=choice,
        mode=mode,
        split_above=split_above,
        probe_interval=probe_interval,
    )
    # The bounds and combinations, by the manager's own rule. Imported here, not at the top:
    # it brings the database layer, which only a file with edge pools should wait for.
    from onm.manager import edge_pools

    try:
        edge_pools.settle(edge_pools.new_pool(NetworkId(""), pool.name, _EPOCH), spec.settings())
    except InvalidInputError as exc:
        node = keys.get(exc.field, keys["name"])
        raise read.error(node, f"{path}.{exc.field}", exc.reason) from None
    return spec


def _hash_fields(read: Reader, node: yaml.Node, path: str) -> tuple[HashField, ...]:
    found: list[HashField] = []
    values = read.sequence(node, path)
    if not values:
        choices = ", ".join(f.value for f in HashField)
        raise read.error(node, path, f"give at least one field ({choices})")
    for j, value in enumerate(values):
        field = read.enumerated(value, f"{path}[{j}]", HashField)
        if field in found:
            raise read.error(value, f"{path}[{j}]", f"{field.value!r} is listed twice")
        found.append(field)
    return tuple(f for f in HashField if f in found)


def _gateway(
    read: Reader,
    node: yaml.Node,
    path: str,
    hosts: Mapping[str, HostSpec],
    externals: Mapping[str, ExternalSpec],
    taken: Mapping[ipaddress.IPv4Address, str],
) -> GatewaySpec:
    keys = read.mapping(node, path, GATEWAY)
    name = read.name(keys["name"], f"{path}.name")
    host = hosts[read.reference(keys["host"], f"{path}.host", "host", hosts)]
    if host.role is not HostRole.EDGE or host.external is None:
        reason = f"host {host.name!r} is not an edge host (give it `role: edge`)"
        raise read.error(keys["host"], f"{path}.host", reason)
    where = f"{path}.external_ip"
    ip = _host_address(read, keys["external_ip"], where, externals[host.external])
    if ip in taken:
        raise read.error(keys["external_ip"], where, f"{ip} is {taken[ip]}")
    return GatewaySpec(name, host.name, ip)


# --- routes --------------------------------------------------------------------------------
def read_routes(
    read: Reader,
    items: list[yaml.Node],
    networks: Mapping[str, NetworkSpec],
    pools: list[EdgePoolSpec],
) -> list[RouteSpec]:
    found: list[RouteSpec] = []
    for i, item in enumerate(items):
        path = f"routes[{i}]"
        keys = read.mapping(item, path, ROUTE)
        network = networks[read.reference(keys["network"], f"{path}.network", "network", networks)]
        where = f"{path}.prefix"
        prefix = read.ipv4_network(keys["prefix"], where)
        own = next((c for c in network.cidrs if prefix.subnet_of(c)), None)
        if own is not None:
            reason = f"{prefix} is inside network {network.name!r}'s own CIDR {own}"
            raise read.error(keys["prefix"], where, reason)
        clash = next(
            (r for r in found if r.network == network.name and r.prefix.overlaps(prefix)), None
        )
        if clash is not None:
            reason = f"{prefix} overlaps network {network.name!r}'s route {clash.prefix}"
            raise read.error(keys["prefix"], where, reason)
        pool = read.text(keys["edge_pool"], f"{path}.edge_pool")
        if not any(p.name == pool and p.network == network.name for p in pools):
            reason = f"{pool!r} is no edge pool of network {network.name!r}"
            raise read.error(keys["edge_pool"], f"{path}.edge_pool", reason)
        found.append(RouteSpec(network.name, prefix, pool))
    return found
