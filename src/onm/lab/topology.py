"""Lab topology files: the typed description of a lab, and the one strict loader for it.

A topology file is YAML with five top-level keys: `substrate` (the IPv6 fabric joining the
hosts), `hosts`, `tenants`, `networks` and `nodes`. The loader composes the YAML node graph
(which keeps every value's line) and walks it against the tables below, so every error names
the file, the line and the key path: `lab.yaml:7: nodes[1].ipp: unknown key`. Names, CIDRs and
addresses are checked by the manager's own validators; references, duplicates and addresses
outside their network are checked here, so an inconsistent file is rejected before anything is
built. Plain scalars are read as the text they are written as (`name: on` is the name "on",
not YAML 1.1's boolean). `onm lab check FILE` runs this loader and nothing else.

`substrate.latency` adds a one-way delay between hosts by how far apart their locations are
(`between_locales`, `between_areas`, `between_racks`: the outermost level of the location in
which two hosts differ picks the key, as `onm.addressing.distance` ranks them); each direction
is delayed, so a round trip takes twice the value longer. Durations carry their unit (`20ms`,
`0.5ms`, `1s`, `250us`): a bare number is refused, since elsewhere in the file (a check's
`interval`) a bare number means seconds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from onm.addressing import Distance, HostPrefix, Location, distance
from onm.errors import InvalidInputError
from onm.model import pool_settings, validate
from onm.model.ids import NetworkId, TenantId
from onm.model.network import AutoPools, Encoding, Network

E = TypeVar("E", bound=enum.StrEnum)

DEFAULT_MTU: Final = 1520
"""The lab's substrate MTU unless the file says otherwise: nodes keep 1500 with SIIT."""
MIN_MTU: Final = 1280
"""IPv6's minimum link MTU (RFC 8200 section 5)."""
MAX_MTU: Final = 9000
TRANSIT: Final = ipaddress.IPv6Network("fd00:ffff::/64")
"""The link joining the lab's hosts; host k (from 1) is `fd00:ffff::k`. No host /64 may be it."""

# The keys each mapping may hold: key -> required. Anything else is an unknown key.
_TOP: Final = {
    "substrate": False,
    "hosts": True,
    "tenants": False,
    "networks": False,
    "nodes": False,
    "pools": False,
}
_SUBSTRATE: Final = {"mtu": False, "latency": False}
_LATENCY_BY_DISTANCE: Final[Mapping[Distance, str]] = {
    Distance.OTHER: "between_locales",
    Distance.SAME_LOCALE: "between_areas",
    Distance.SAME_AREA: "between_racks",
}
"""How far apart two hosts are -> the `substrate.latency` key that delays them (none: no delay,
same rack or same host)."""
_LATENCY: Final = dict.fromkeys(_LATENCY_BY_DISTANCE.values(), False)
MAX_DELAY_US: Final = 10_000_000
"""The largest one-way delay a lab may add: 10 s."""
_DURATION: Final = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>us|ms|s)")
_MICROSECONDS: Final = {"us": 1, "ms": 1_000, "s": 1_000_000}
"""A duration's unit -> microseconds in one."""
_HOST: Final = {"name": True, "location": False, "prefix": False}
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
_POOL: Final = {
    "name": True,
    "network": True,
    "ip": True,
    "members": False,
    "policy": False,
    "scope": False,
    "all_down": False,
    "check": False,
}
_CHECK: Final = {
    "kind": True,
    "port": False,
    "path": False,
    "interval": False,
    "timeout": False,
    "rise": False,
    "fall": False,
}

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PLAIN_TAGS: Final = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null")
)


class TopologyError(InvalidInputError):
    """A topology file that cannot be built: where (`source:line`), which key, and why."""

    def __init__(self, source: str, line: int, path: str, reason: str) -> None:
        super().__init__(path or "file", reason)
        self.source = source
        self.line = line
        self.path = path
        self.message = (
            f"{source}:{line}: {path}: {reason}" if path else f"{source}:{line}: {reason}"
        )
        self.args = (self.message,)


@dataclass(frozen=True, slots=True)
class Latency:
    """One-way delays the lab adds between hosts, in microseconds (0: none), by the outermost
    level of location in which the two hosts differ."""

    between_locales: int = 0
    """Hosts in different locales (or with another org id or layout version)."""
    between_areas: int = 0
    """Hosts in one locale, different areas."""
    between_racks: int = 0
    """Hosts in one area, different racks."""

    def between(self, a: HostPrefix, b: HostPrefix) -> int:
        """The one-way delay from host `a` to host `b` (microseconds; 0 for the same rack)."""
        key = _LATENCY_BY_DISTANCE.get(distance(a, b))
        return 0 if key is None else int(getattr(self, key))

    def adds_any(self) -> bool:
        """Does any pair of hosts get a delay?"""
        return any(asdict(self).values())


@dataclass(frozen=True, slots=True)
class Substrate:
    """The IPv6 fabric joining the hosts."""

    mtu: int = DEFAULT_MTU
    """Link MTU of the fabric and of the hosts' node-facing interfaces."""
    latency: Latency = Latency()
    """Delays added between hosts (none unless the file asks)."""


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    prefix: HostPrefix
    """The host's /64, given as `prefix` or derived from `location`."""


@dataclass(frozen=True, slots=True)
class TenantSpec:
    name: str


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    name: str
    tenant: str
    cidrs: tuple[ipaddress.IPv4Network, ...]
    encoding: Encoding = Encoding.SIIT
    auto_pools: AutoPools = AutoPools.PROPOSE
    """What two nodes claiming one address become (onm.manager.detection)."""

    def gateway_for(self, ip: ipaddress.IPv4Address) -> ipaddress.IPv4Address | None:
        """The router address of the CIDR holding `ip`, by the model's own rule."""
        model = Network(
            NetworkId(""), TenantId(""), self.name, 0, self.cidrs, self.encoding, _EPOCH
        )
        return model.gateway_for(ip)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    network: str
    host: str
    ip: ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    network: str
    ip: ipaddress.IPv4Address
    members: tuple[str, ...]
    settings: Mapping[str, Any]
    """As the API takes them (`policy`, `scope`, `all_down`, `check`), already checked."""


@dataclass(frozen=True, slots=True)
class Topology:
    """A whole lab; every reference in it resolves and every name is unique in its kind."""

    substrate: Substrate
    hosts: tuple[HostSpec, ...]
    tenants: tuple[TenantSpec, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()
    nodes: tuple[NodeSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    def network(self, name: str) -> NetworkSpec:
        return next(n for n in self.networks if n.name == name)

    def digest(self) -> str:
        """A hash of what the file means (not how it is written): same lab, same digest."""
        substrate: dict[str, Any] = {"mtu": self.substrate.mtu}
        if (
            self.substrate.latency.adds_any()
        ):  # a file without latency keeps the digest it had before
            substrate["latency"] = asdict(self.substrate.latency)
        data = {
            "substrate": substrate,
            "hosts": [[h.name, str(h.prefix)] for h in self.hosts],
            "tenants": [t.name for t in self.tenants],
            "networks": [
                [n.name, n.tenant, [str(c) for c in n.cidrs], n.encoding.value]
                + ([] if n.auto_pools is AutoPools.PROPOSE else [n.auto_pools.value])
                for n in self.networks
            ],
            "nodes": [[n.name, n.network, n.host, str(n.ip)] for n in self.nodes],
            "pools": [
                [p.name, p.network, str(p.ip), list(p.members), dict(p.settings)]
                for p in self.pools
            ],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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
        return _Reader(source, loader).topology(root)
    finally:
        loader.dispose()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Reader:
    """Walks the composed YAML graph; every check raises a `TopologyError` at its node."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def error(self, node: yaml.Node, path: str, reason: str) -> TopologyError:
        return TopologyError(self.source, node.start_mark.line + 1, path, reason)

    def plain(self, node: yaml.Node, path: str) -> None:
        """Only YAML's own kinds of value: no `!tag` that asks for something else."""
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self.error(node, path, f"the tag {tag} is not allowed here")

    # --- shapes ----------------------------------------------------------------------------
    def mapping(self, node: yaml.Node, path: str, keys: Mapping[str, bool]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, "must be a mapping of keys to values")
        self.plain(node, path)
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, path, "keys must be plain words")
            key = str(key_node.value)
            where = _join(path, key)
            if key not in keys:
                expected = ", ".join(keys)
                raise self.error(key_node, where, f"unknown key (expected one of: {expected})")
            if key in found:
                raise self.error(key_node, where, "key given twice")
            found[key] = value_node
        for key, required in keys.items():
            if required and key not in found:
                raise self.error(node, _join(path, key), "required key is missing")
        return found

    def sequence(self, node: yaml.Node | None, path: str) -> list[yaml.Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, path, "must be a list")
        self.plain(node, path)
        return list(node.value)

    def text(self, node: yaml.Node, path: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, "must be a single value, not a list or mapping")
        self.plain(node, path)
        value = str(node.value)
        if node.tag == "tag:yaml.org,2002:null" or not value:
            raise self.error(node, path, "must not be empty")
        return value

    def integer(self, node: yaml.Node, path: str, low: int, high: int) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            raise self.error(node, path, f"must be a whole number in {low}..{high}")
        value = self.loader.construct_object(node)
        if not isinstance(value, int) or not low <= value <= high:
            raise self.error(node, path, f"must be {low}..{high}, got {value}")
        return value

    def name(self, node: yaml.Node, path: str) -> str:
        value = self.text(node, path)
        try:
            return validate.name(path, value)
        except InvalidInputError as exc:
            raise self.error(node, path, exc.reason) from None

    def choice(self, keys: dict[str, yaml.Node], path: str, key: str, default: E) -> E:
        """The value of an enumeration at `key` (`default` when absent), by its spelling."""
        if key not in keys:
            return default
        where = f"{path}.{key}"
        value = self.text(keys[key], where)
        kind = type(default)
        if value not in {e.value for e in kind}:
            choices = ", ".join(e.value for e in kind)
            raise self.error(keys[key], where, f"{value!r} is not one of {choices}")
        return kind(value)

    def reference(self, node: yaml.Node, path: str, kind: str, known: Mapping[str, object]) -> str:
        value = self.text(node, path)
        if value not in known:
            raise self.error(node, path, f"{kind} {value!r} is not defined")
        return value

    def unique(self, node: yaml.Node, path: str, kind: str, name: str, seen: set[str]) -> None:
        if name in seen:
            raise self.error(node, path, f"{kind} {name!r} is defined twice")
        seen.add(name)

    # --- the lab -----------------------------------------------------------------------------
    def topology(self, root: yaml.Node) -> Topology:
        top = self.mapping(root, "", _TOP)
        substrate = self.substrate(top.get("substrate"))
        hosts = self.hosts(self.sequence(top["hosts"], "hosts"), top["hosts"])
        tenants = self.tenants(self.sequence(top.get("tenants"), "tenants"))
        networks = self.networks(self.sequence(top.get("networks"), "networks"), tenants)
        nodes = self.nodes(self.sequence(top.get("nodes"), "nodes"), networks, hosts)
        pools = self.pools(self.sequence(top.get("pools"), "pools"), networks, nodes)
        return Topology(
            substrate,
            tuple(hosts.values()),
            tuple(tenants.values()),
            tuple(networks.values()),
            tuple(nodes),
            tuple(pools),
        )

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

    def hosts(self, items: list[yaml.Node], whole: yaml.Node) -> dict[str, HostSpec]:
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
            found[name] = HostSpec(name, prefix)
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
            raise self.error(item, f"{path}.cidr", "required key is missing (or give `cidrs`)")
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
            ip = self.node_ip(keys["ip"], f"{path}.ip", networks[network])
            if (network, ip) in owners:
                reason = f"{ip} is node {owners[network, ip]}'s address in network {network!r}"
                raise self.error(keys["ip"], f"{path}.ip", reason)
            owners[network, ip] = name
            found.append(NodeSpec(name, network, host, ip))
        return found

    def pools(
        self,
        items: list[yaml.Node],
        networks: Mapping[str, NetworkSpec],
        nodes: list[NodeSpec],
    ) -> list[PoolSpec]:
        found: list[PoolSpec] = []
        names: set[tuple[str, str]] = set()
        owners = {(n.network, n.ip): n.name for n in nodes}
        for i, item in enumerate(items):
            path = f"pools[{i}]"
            keys = self.mapping(item, path, _POOL)
            name = self.name(keys["name"], f"{path}.name")
            network = self.reference(keys["network"], f"{path}.network", "network", networks)
            if (network, name) in names:
                raise self.error(keys["name"], f"{path}.name", f"pool {name!r} is defined twice")
            names.add((network, name))
            ip = self.node_ip(keys["ip"], f"{path}.ip", networks[network])
            if (network, ip) in owners:
                reason = f"{ip} is node {owners[network, ip]}'s address in network {network!r}"
                raise self.error(keys["ip"], f"{path}.ip", reason)
            owners[network, ip] = f"pool {name}"
            members = []
            where = f"{path}.members"
            for j, value in enumerate(self.sequence(keys.get("members"), where)):
                member = self.name(value, f"{where}[{j}]")
                spec = next((n for n in nodes if n.name == member), None)
                if spec is None or spec.network != network:
                    reason = f"{member!r} is no node of network {network!r}"
                    raise self.error(value, f"{where}[{j}]", reason)
                if member in members:
                    raise self.error(value, f"{where}[{j}]", f"{member!r} is listed twice")
                members.append(member)
            settings = self.pool_settings(keys, path)
            found.append(PoolSpec(name, network, ip, tuple(members), settings))
        return found

    def pool_settings(self, keys: dict[str, yaml.Node], path: str) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        for key in ("policy", "scope", "all_down"):
            if key in keys:
                settings[key] = self.text(keys[key], f"{path}.{key}")
        if "check" in keys:
            where = f"{path}.check"
            parts = self.mapping(keys["check"], where, _CHECK)
            check: dict[str, Any] = {"kind": self.text(parts["kind"], f"{where}.kind")}
            if "path" in parts:
                check["path"] = self.text(parts["path"], f"{where}.path")
            for key in ("port", "rise", "fall"):
                if key in parts:
                    check[key] = self.integer(parts[key], f"{where}.{key}", 0, 65535)
            for key in ("interval", "timeout"):
                if key in parts:
                    check[key] = self.number(parts[key], f"{where}.{key}")
            settings["check"] = check
        try:
            pool_settings.check_settings(settings)
        except InvalidInputError as exc:
            field = exc.field.split(".")[-1]
            node = keys.get(exc.field) or keys.get("check") or keys["name"]
            if exc.field.startswith("check.") and "check" in keys:
                inner = self.mapping(keys["check"], f"{path}.check", _CHECK)
                node = inner.get(field) or keys["check"]
            raise self.error(node, f"{path}.{exc.field}", exc.reason) from None
        return settings

    def number(self, node: yaml.Node, path: str) -> float:
        numbers = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        if not isinstance(node, yaml.ScalarNode) or node.tag not in numbers:
            raise self.error(node, path, "must be a number (seconds)")
        value = self.loader.construct_object(node)
        if (
            not isinstance(value, int | float)
            or value != value
            or value
            in (
                float("inf"),
                float("-inf"),
            )
        ):
            raise self.error(node, path, f"must be a finite number, got {node.value}")
        return float(value)

    def node_ip(self, node: yaml.Node, path: str, network: NetworkSpec) -> ipaddress.IPv4Address:
        try:
            ip = validate.ipv4(path, self.text(node, path))
        except InvalidInputError as exc:
            raise self.error(node, path, exc.reason) from None
        cidr = next((c for c in network.cidrs if ip in c), None)
        if cidr is None:
            cidrs = ", ".join(str(c) for c in network.cidrs)
            raise self.error(node, path, f"{ip} is not inside network {network.name!r} ({cidrs})")
        if ip in (cidr.network_address, cidr.broadcast_address):
            raise self.error(node, path, f"{ip} is the network or broadcast address of {cidr}")
        if ip == network.gateway_for(ip):
            raise self.error(node, path, f"{ip} is the gateway address of network {network.name!r}")
        return ip
