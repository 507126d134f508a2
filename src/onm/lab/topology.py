"""Lab topology files: the one strict loader for them, and the typed description it yields.

A topology file is YAML with these top-level keys: `manager` (settings of the lab's manager:
`resolution_ttl`, seconds, as `onm manager serve --resolution-ttl`), `substrate` (the IPv6
fabric joining the hosts), `externals` (networks outside the overlay, with their servers),
`hosts`, `tenants`, `networks`, `nodes`, `pools`, `edge_pools` and `routes`. The loader composes
the YAML node graph (which keeps every value's line) and walks it against the tables below, so
every error names the file, the line and the key path: `lab.yaml:7: nodes[1].ipp: unknown key`.
Names, CIDRs and addresses are checked by the manager's own validators; references, duplicates
and addresses outside their network are checked here, so an inconsistent file is rejected before
anything is built. Plain scalars are read as the text they are written as (`name: on` is the
name "on", not YAML 1.1's boolean). `onm lab check FILE` runs this loader and nothing else.

The parts live by concept: the typed specs in `onm.lab.topology_spec`, the YAML shapes in
`onm.lab.topology_reader`, pools in `onm.lab.topology_pools`, externals, edge pools and routes in
`onm.lab.topology_edge`; this module reads the substrate, hosts, tenants, networks and nodes, and
puts the whole together. Everything a caller needs is importable from here.

A host is a node host (`role: node`, the default) or an edge host (`role: edge`), which names
the external network it has an interface on (`external`) and runs no nodes.

`substrate.latency` adds a one-way delay between hosts by how far apart their locations are
(`between_locales`, `between_areas`, `between_racks`: the outermost level of the location in
which two hosts differ picks the key, as `onm.addressing.distance` ranks them); each direction
is delayed, so a round trip takes twice the value longer. Durations carry their unit (`20ms`,
`0.5ms`, `1s`, `250us`): a bare number is refused, since elsewhere in the file (a check's
`interval`) a bare number means seconds.
"""

from __future__ import annotations

import decimal
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import yaml

from onm.addressing import HostPrefix, Location
from onm.errors import InvalidInputError
from onm.lab.topology_edge import (
    check_server_names,
    read_edge_pools,
    read_externals,
    read_routes,
)
from onm.lab.topology_pools import read_pools
from onm.lab.topology_reader import Reader, TopologyError, join
from onm.lab.topology_spec import (
    DEFAULT_MTU,
    LATENCY_BY_DISTANCE,
    MAX_MTU,
    MIN_MTU,
    TRANSIT,
    EdgePoolSpec,
    ExternalSpec,
    GatewaySpec,
    HostSpec,
    Latency,
    ManagerSpec,
    NetworkSpec,
    NodeSpec,
    PoolSpec,
    RouteSpec,
    ServerSpec,
    Substrate,
    TenantSpec,
    Topology,
)
from onm.model import resolution, validate
from onm.model.host import HostRole
from onm.model.network import AutoPools, Encoding

__all__ = [
    "DEFAULT_MTU",
    "MAX_DELAY_US",
    "MAX_MTU",
    "MIN_MTU",
    "TRANSIT",
    "EdgePoolSpec",
    "ExternalSpec",
    "GatewaySpec",
    "HostSpec",
    "Latency",
    "ManagerSpec",
    "NetworkSpec",
    "NodeSpec",
    "PoolSpec",
    "RouteSpec",
    "ServerSpec",
    "Substrate",
    "TenantSpec",
    "Topology",
    "TopologyError",
    "load",
    "loads",
]

# The keys each mapping may hold: key -> required. Anything else is an unknown key.
_TOP: Final = {
    "manager": False,
    "substrate": False,
    "externals": False,
    "hosts": True,
    "tenants": False,
    "networks": False,
    "nodes": False,
    "pools": False,
    "edge_pools": False,
    "routes": False,
}
_MANAGER: Final = {"resolution_ttl": False}
_SUBSTRATE: Final = {"mtu": False, "latency": False}
_LATENCY: Final = dict.fromkeys(LATENCY_BY_DISTANCE.values(), False)
MAX_DELAY_US: Final = 10_000_000
"""The largest one-way delay a lab may add: 10 s."""
_DURATION: Final = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>us|ms|s)")
_MICROSECONDS: Final = {"us": 1, "ms": 1_000, "s": 1_000_000}
"""A duration's unit -> microseconds in one."""
_HOST: Final = {"name": True, "location": False, "prefix": False, "role": False, "external": False}
_LOCATION: Final = {"locale": True, "area": True, "rack": True, "node": True}
_TENANT: Final = {"name": True}
_NETWORK: Final = {
    "name": True,
    "tenant": True,
    "cidr": False,
    "cidrs": False,
    "encoding": False,
    "auto_pools": False,
}
_NODE: Final = {"name": True, "network": True, "host": True, "ip": True}


def load(path: Path) -> Topology:
    """Read and check the topology file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError("file", f"cannot read {path}: {reason}") from None
    return loads(text, str(path))


def loads(text: str, source: str = "<topology>") -> Topology:
    """Check the topology in `text`; errors name `source` and the line."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            what = ", ".join(filter(None, (exc.context, exc.problem)))
            raise TopologyError(source, line, "", f"invalid YAML: {what}") from None
        except yaml.YAMLError as exc:
            raise TopologyError(source, 1, "", f"invalid YAML: {exc}") from None
        if root is None:
            raise TopologyError(source, 1, "", "the file is empty")
        return _LabReader(source, loader).topology(root)
    finally:
        loader.dispose()


class _LabReader(Reader):
    """The whole file, in the order its parts refer to each other."""

    def topology(self, root: yaml.Node) -> Topology:
        top = self.mapping(root, "", _TOP)
        manager = self.manager(top.get("manager"))
        substrate = self.substrate(top.get("substrate"))
        externals, server_names = read_externals(
            self, self.sequence(top.get("externals"), "externals")
        )
        hosts = self.hosts(self.sequence(top["hosts"], "hosts"), top["hosts"], externals)
        tenants = self.tenants(self.sequence(top.get("tenants"), "tenants"))
        networks = self.networks(self.sequence(top.get("networks"), "networks"), tenants)
        nodes = self.nodes(self.sequence(top.get("nodes"), "nodes"), networks, hosts)
        check_server_names(self, server_names, hosts, nodes)
        pools = read_pools(self, self.sequence(top.get("pools"), "pools"), networks, nodes)
        edge_items = self.sequence(top.get("edge_pools"), "edge_pools")
        edge_pools = read_edge_pools(self, edge_items, networks, hosts, externals)
        routes = read_routes(self, self.sequence(top.get("routes"), "routes"), networks, edge_pools)
        return Topology(
            substrate,
            tuple(hosts.values()),
            tuple(tenants.values()),
            tuple(networks.values()),
            tuple(nodes),
            tuple(pools),
            tuple(externals.values()),
            tuple(edge_pools),
            tuple(routes),
            manager,
        )

    def manager(self, node: yaml.Node | None) -> ManagerSpec:
        if node is None:
            return ManagerSpec()
        keys = self.mapping(node, "manager", _MANAGER)
        if "resolution_ttl" not in keys:
            return ManagerSpec()
        where = "manager.resolution_ttl"
        seconds = self.number(keys["resolution_ttl"], where)
        try:
            resolution.ttl(where, seconds)  # the bounds `onm manager serve` holds it to
        except InvalidInputError as exc:
            raise self.error(keys["resolution_ttl"], where, exc.reason) from None
        return ManagerSpec(seconds)

    def substrate(self, node: yaml.Node | None) -> Substrate:
        if node is None:
            return Substrate()
        keys = self.mapping(node, "substrate", _SUBSTRATE)
        mtu = DEFAULT_MTU
        if "mtu" in keys:
            mtu = self.integer(keys["mtu"], "substrate.mtu", MIN_MTU, MAX_MTU)
        latency = Latency()
        if "latency" in keys:
            where = "substrate.latency"
            parts = self.mapping(keys["latency"], where, _LATENCY)
            latency = Latency(
                **{key: self.duration(value, f"{where}.{key}") for key, value in parts.items()}
            )
        return Substrate(mtu, latency)

    def duration(self, node: yaml.Node, path: str) -> int:
        """`20ms`, `0.5ms`, `1s`, `250us` as whole microseconds, 0..MAX_DELAY_US."""
        value = self.text(node, path).strip()
        if value.startswith("-"):
            raise self.error(node, path, f"must not be negative, got {value}")
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            raise self.error(node, path, f"write the unit: {value}ms, {value}s or {value}us")
        found = _DURATION.fullmatch(value)
        if found is None:
            raise self.error(
                node, path, f"must be a duration such as 20ms, 0.5ms or 1s, got {value}"
            )
        micro = decimal.Decimal(found["number"]) * _MICROSECONDS[found["unit"]]
        if micro != micro.to_integral_value():
            raise self.error(node, path, f"{value} is not a whole number of microseconds")
        if micro > MAX_DELAY_US:
            raise self.error(node, path, f"must be at most 10s, got {value}")
        return int(micro)

    def hosts(
        self, items: list[yaml.Node], whole: yaml.Node, externals: Mapping[str, ExternalSpec]
    ) -> dict[str, HostSpec]:
        if not items:
            raise self.error(whole, "hosts", "a lab needs at least one host")
        found: dict[str, HostSpec] = {}
        owners: dict[HostPrefix, str] = {}
        for i, item in enumerate(items):
            path = f"hosts[{i}]"
            keys = self.mapping(item, path, _HOST)
            name = self.name(keys["name"], f"{path}.name")
            self.unique(keys["name"], f"{path}.name", "host", name, set(found))
            prefix = self.host_prefix(item, keys, path)
            where = keys.get("prefix") or keys["location"]
            if prefix in owners:
                reason = f"host {name}'s /64 {prefix} is host {owners[prefix]}'s too"
                raise self.error(where, path, reason)
            if prefix.network.overlaps(TRANSIT):
                raise self.error(where, path, f"{prefix} is the lab's transit network")
            owners[prefix] = name
            role = self.choice(keys, path, "role", HostRole.NODE)
            external = self.host_external(item, keys, path, role, externals)
            found[name] = HostSpec(name, prefix, role, external)
        return found

    def host_prefix(self, item: yaml.Node, keys: dict[str, yaml.Node], path: str) -> HostPrefix:
        derived = given = None
        if "location" in keys:
            where = f"{path}.location"
            parts = self.mapping(keys["location"], where, _LOCATION)
            values = {key: self.integer(parts[key], f"{where}.{key}", 0, 255) for key in _LOCATION}
            try:
                derived = HostPrefix(Location(**values))
            except InvalidInputError as exc:
                raise self.error(parts[exc.field], f"{where}.{exc.field}", exc.reason) from None
        if "prefix" in keys:
            where = f"{path}.prefix"
            try:
                given = HostPrefix.from_network(self.text(keys["prefix"], where))
            except InvalidInputError as exc:
                raise self.error(keys["prefix"], where, exc.reason) from None
            if derived is not None and given != derived:
                reason = f"{given} does not match the location's prefix {derived}"
                raise self.error(keys["prefix"], where, reason)
        prefix = given or derived
        if prefix is None:
            raise self.error(item, path, "give the host a `location` or a `prefix`")
        return prefix

    def host_external(
        self,
        item: yaml.Node,
        keys: dict[str, yaml.Node],
        path: str,
        role: HostRole,
        externals: Mapping[str, ExternalSpec],
    ) -> str | None:
        """The external network of an edge host; None for a node host, which may name none."""
        where = f"{path}.external"
        if "external" not in keys:
            if role is HostRole.EDGE:
                reason = "an edge host names the external network it is on"
                raise self.error(item, where, reason)
            return None
        if role is not HostRole.EDGE:
            reason = "only an edge host (`role: edge`) is on an external network"
            raise self.error(keys["external"], where, reason)
        return self.reference(keys["external"], where, "external network", externals)

    def tenants(self, items: list[yaml.Node]) -> dict[str, TenantSpec]:
        found: dict[str, TenantSpec] = {}
        for i, item in enumerate(items):
            path = f"tenants[{i}]"
            keys = self.mapping(item, path, _TENANT)
            name = self.name(keys["name"], f"{path}.name")
            self.unique(keys["name"], f"{path}.name", "tenant", name, set(found))
            found[name] = TenantSpec(name)
        return found

    def networks(
        self, items: list[yaml.Node], tenants: Mapping[str, TenantSpec]
    ) -> dict[str, NetworkSpec]:
        found: dict[str, NetworkSpec] = {}
        for i, item in enumerate(items):
            path = f"networks[{i}]"
            keys = self.mapping(item, path, _NETWORK)
            name = self.name(keys["name"], f"{path}.name")
            self.unique(keys["name"], f"{path}.name", "network", name, set(found))
            tenant = self.reference(keys["tenant"], f"{path}.tenant", "tenant", tenants)
            cidrs = self.cidrs(item, keys, path)
            encoding = self.choice(keys, path, "encoding", Encoding.SIIT)
            auto_pools = self.choice(keys, path, "auto_pools", AutoPools.PROPOSE)
            found[name] = NetworkSpec(name, tenant, cidrs, encoding, auto_pools)
        return found

    def cidrs(
        self, item: yaml.Node, keys: dict[str, yaml.Node], path: str
    ) -> tuple[ipaddress.IPv4Network, ...]:
        if "cidr" in keys and "cidrs" in keys:
            raise self.error(keys["cidrs"], f"{path}.cidrs", "give `cidr` or `cidrs`, not both")
        if "cidr" in keys:
            where, node = f"{path}.cidr", keys["cidr"]
            values = [self.text(node, where)]
        elif "cidrs" in keys:
            where, node = f"{path}.cidrs", keys["cidrs"]
            values = [
                self.text(value, f"{where}[{j}]")
                for j, value in enumerate(self.sequence(node, where))
            ]
        else:
            raise self.error(item, join(path, "cidr"), "required key is missing (or give `cidrs`)")
        try:
            return validate.cidrs(where, values)
        except InvalidInputError as exc:
            raise self.error(node, where, exc.reason) from None

    def nodes(
        self,
        items: list[yaml.Node],
        networks: Mapping[str, NetworkSpec],
        hosts: Mapping[str, HostSpec],
    ) -> list[NodeSpec]:
        found: list[NodeSpec] = []
        names: set[str] = set()
        owners: dict[tuple[str, ipaddress.IPv4Address], str] = {}
        for i, item in enumerate(items):
            path = f"nodes[{i}]"
            keys = self.mapping(item, path, _NODE)
            name = self.name(keys["name"], f"{path}.name")
            self.unique(keys["name"], f"{path}.name", "node", name, names)
            network = self.reference(keys["network"], f"{path}.network", "network", networks)
            host = self.reference(keys["host"], f"{path}.host", "host", hosts)
            if hosts[host].role is HostRole.EDGE:
                reason = f"host {host!r} is an edge host: it runs no nodes"
                raise self.error(keys["host"], f"{path}.host", reason)
            ip = self.node_ip(keys["ip"], f"{path}.ip", networks[network])
            if (network, ip) in owners:
                reason = f"{ip} is node {owners[network, ip]}'s address in network {network!r}"
                raise self.error(keys["ip"], f"{path}.ip", reason)
            owners[network, ip] = name
            found.append(NodeSpec(name, network, host, ip))
        return found
