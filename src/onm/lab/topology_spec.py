"""What a lab topology file describes, as typed, immutable data (read by `onm.lab.topology`).

Every spec names the objects it refers to by their names in the file; `Topology` is a whole lab
whose references all resolve. Settings the file leaves out stay out (`None`, or absent from a
`settings` mapping), so the manager's defaults apply, not a copy of them kept here.
`Topology.digest()` hashes what the file means; a file that uses none of the later keys (latency,
externals, edge hosts, edge pools, routes) keeps the digest it had before they existed, so a lab
that is up is not refused by `onm lab up` after an upgrade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from onm.addressing import Distance, HostPrefix, distance
from onm.model.edge_pool import Choice, HashField, Mode, Nat
from onm.model.host import HostRole
from onm.model.ids import NetworkId, TenantId
from onm.model.network import AutoPools, Encoding, Network

DEFAULT_MTU: Final = 1520
"""The lab's substrate MTU unless the file says otherwise: nodes keep 1500 with SIIT."""
MIN_MTU: Final = 1280
"""IPv6's minimum link MTU (RFC 8200 section 5)."""
MAX_MTU: Final = 9000
TRANSIT: Final = ipaddress.IPv6Network("fd00:ffff::/64")
"""The link joining the lab's hosts; host k (from 1) is `fd00:ffff::k`. No host /64 may be it."""
LATENCY_BY_DISTANCE: Final[Mapping[Distance, str]] = {
    Distance.OTHER: "between_locales",
    Distance.SAME_LOCALE: "between_areas",
    Distance.SAME_AREA: "between_racks",
}
"""How far apart two hosts are -> the `substrate.latency` key that delays them (none: no delay,
same rack or same host)."""

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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
        key = LATENCY_BY_DISTANCE.get(distance(a, b))
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
class ManagerSpec:
    """Settings of the lab's manager (`onm manager serve` options); None: the manager's own."""

    resolution_ttl: float | None = None
    """Seconds an answer to a resolution lives (`--resolution-ttl`)."""

    def argv(self) -> tuple[str, ...]:
        """The `onm manager serve` options that give these settings."""
        if self.resolution_ttl is None:
            return ()
        return ("--resolution-ttl", f"{self.resolution_ttl:g}")


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A machine on an external network (`onm lab exec SERVER -- CMD` runs in it)."""

    name: str
    ip: ipaddress.IPv4Address
    """Inside its external network's CIDR; its interface carries it with the CIDR's length."""


@dataclass(frozen=True, slots=True)
class ExternalSpec:
    """A network outside the overlay (seed 1), one switch of its own in the lab."""

    name: str
    cidr: ipaddress.IPv4Network
    servers: tuple[ServerSpec, ...] = ()

    def interface(self, ip: ipaddress.IPv4Address) -> ipaddress.IPv4Interface:
        """`ip` with the external network's prefix length, as a server's interface holds it."""
        return ipaddress.IPv4Interface((ip, self.cidr.prefixlen))


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    prefix: HostPrefix
    """The host's /64, given as `prefix` or derived from `location`."""
    role: HostRole = HostRole.NODE
    """`edge`: a gateway host, with an interface on `external` and no nodes."""
    external: str | None = None
    """The external network an edge host is on (None for a node host)."""


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
class GatewaySpec:
    name: str
    host: str
    """An edge host."""
    external_ip: ipaddress.IPv4Address
    """Inside the host's external network (its SNAT address with `nat: snat`)."""


@dataclass(frozen=True, slots=True)
class EdgePoolSpec:
    """A network's way out through gateways (seed 1). A setting left None is the manager's."""

    name: str
    network: str
    gateways: tuple[GatewaySpec, ...] = ()
    nat: Nat | None = None
    hash_fields: tuple[HashField, ...] | None = None
    """In `HashField` order, as the manager keeps them."""
    choice: Choice | None = None
    mode: Mode | None = None
    split_above: float | None = None
    """Bits per second (`nat: none` only)."""
    probe_interval: float | None = None
    """Seconds."""

    def settings(self) -> dict[str, Any]:
        """What the file sets, as `POST /v1/edge-pools` takes it; nothing it leaves out."""
        given: dict[str, Any] = {
            "nat": None if self.nat is None else self.nat.value,
            "hash": None if self.hash_fields is None else [f.value for f in self.hash_fields],
            "choice": None if self.choice is None else self.choice.value,
            "mode": None if self.mode is None else self.mode.value,
            "split_above": self.split_above,
            "probe_interval": self.probe_interval,
        }
        return {key: value for key, value in given.items() if value is not None}


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """The network sends `prefix` (outside its own CIDRs) through its edge pool `edge_pool`."""

    network: str
    prefix: ipaddress.IPv4Network
    edge_pool: str


@dataclass(frozen=True, slots=True)
class Topology:
    """A whole lab; every reference in it resolves and every name is unique in its kind."""

    substrate: Substrate
    hosts: tuple[HostSpec, ...]
    tenants: tuple[TenantSpec, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()
    nodes: tuple[NodeSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    externals: tuple[ExternalSpec, ...] = ()
    edge_pools: tuple[EdgePoolSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    manager: ManagerSpec = ManagerSpec()

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    def network(self, name: str) -> NetworkSpec:
        return next(n for n in self.networks if n.name == name)

    def external(self, name: str) -> ExternalSpec:
        return next(x for x in self.externals if x.name == name)

    def servers(self) -> tuple[tuple[ExternalSpec, ServerSpec], ...]:
        """Every server, with the external network it is on, in file order."""
        return tuple((x, s) for x in self.externals for s in x.servers)

    def digest(self) -> str:
        """A hash of what the file means (not how it is written): same lab, same digest."""
        substrate: dict[str, Any] = {"mtu": self.substrate.mtu}
        if (
            self.substrate.latency.adds_any()
        ):  # a file without latency keeps the digest it had before
            substrate["latency"] = asdict(self.substrate.latency)
        data: dict[str, Any] = {
            "substrate": substrate,
            "hosts": [
                [h.name, str(h.prefix)]
                + ([] if h.role is HostRole.NODE else [h.role.value, h.external])
                for h in self.hosts
            ],
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
        # Keys added later, each only when used: a file without them keeps its digest.
        if self.manager != ManagerSpec():
            data["manager"] = asdict(self.manager)
        if self.externals:
            data["externals"] = [
                [x.name, str(x.cidr), [[s.name, str(s.ip)] for s in x.servers]]
                for x in self.externals
            ]
        if self.edge_pools:
            data["edge_pools"] = [
                [
                    p.name,
                    p.network,
                    p.settings(),
                    [[g.name, g.host, str(g.external_ip)] for g in p.gateways],
                ]
                for p in self.edge_pools
            ]
        if self.routes:
            data["routes"] = [[r.network, str(r.prefix), r.edge_pool] for r in self.routes]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
