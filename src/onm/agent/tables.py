"""Forwarding tables: what the agent's datapaths consult per packet, compiled from a snapshot.

Plain data keyed by bytes, so the userspace datapath can look things up without building
objects, and the eBPF datapath (a later issue) can load the same entries into maps. Compiling is
pure: a `HostSnapshot` in, `Tables` out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final

from onm.addressing import agent_address, unsteered
from onm.model import Encoding, NetworkId, NodeId
from onm.model.edge_pool import Choice, GatewayState, HashField, Mode, Nat
from onm.model.edge_rule import EdgeRule
from onm.model.host import HostRole
from onm.model.ids import EdgePoolId, GatewayId, PoolId
from onm.model.pool import AllDown, HealthCheck, Rotation
from onm.model.snapshot import EdgePoolView, HostSnapshot
from onm.packet import encap, ipv4, ipv6
from onm.packet.ethernet import parse_mac
from onm.packet.siit import SiitConfig, UdpZeroChecksum
from onm.selection.policy import RETURNING

OVERHEAD: Final[Mapping[Encoding, int]] = {
    Encoding.SIIT: ipv6.HEADER_LENGTH - ipv4.MIN_HEADER_LENGTH,  # re-headered (RFC 7915)
    Encoding.ENCAP: encap.OVERHEAD,  # a whole IPv6 header in front (RFC 2473)
}
"""What each encoding adds to an IPv4 packet on the substrate (DESIGN.md section 3): a node's
MTU is the substrate's less this."""
ROUTER_MAC_PREFIX = b"\x0a\x00\x00"  # locally administered, unicast; then the 24-bit network id


NOTHING: Mapping[Any, Any] = MappingProxyType({})


def router_mac(vni: int) -> bytes:
    """The MAC the agent answers with for a network's gateway addresses (one per network)."""
    return ROUTER_MAC_PREFIX + vni.to_bytes(3, "big")


def node_mtu(substrate_mtu: int, encoding: Encoding) -> int:
    return substrate_mtu - OVERHEAD[encoding]


@dataclass(frozen=True, slots=True)
class NetworkEntry:
    id: NetworkId
    vni: int
    encoding: Encoding
    cidrs: tuple[ipaddress.IPv4Network, ...]
    gateways: frozenset[bytes]
    router_mac: bytes
    siit: SiitConfig

    def contains(self, ip: bytes) -> bool:
        address = ipaddress.IPv4Address(ip)
        return any(address in cidr for cidr in self.cidrs)


@dataclass(frozen=True, slots=True)
class Port:
    """A local node's attachment: the host-side interface the agent owns for it."""

    node_id: NodeId
    name: str
    interface: str
    mac: bytes
    ip: bytes
    substrate: bytes
    network: NetworkEntry
    pool_sources: Mapping[bytes, bytes] = field(default_factory=lambda: NOTHING)
    """Pool IPs this node is a member of -> its pool address: it may send from them."""


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """A live pool of one of our networks, as requesters here are steered to its members."""

    id: PoolId
    name: str
    vni: int
    ip: bytes
    mac: bytes
    fail_open: bool
    returning: bool
    """Requesters go back to their first member when it recovers (`RETURNING` policies)."""
    members: Mapping[NodeId, bytes]
    """Member -> its pool address."""
    usable: frozenset[NodeId]
    """The members whose health allows traffic."""
    check: HealthCheck
    rotation: Rotation | None = None
    """`ranked` pools that rotate: move each requester on after N packets or T seconds."""


def choose(pool: PoolEntry, ranking: Sequence[NodeId], current: NodeId | None) -> NodeId | None:
    """The member a requester with `ranking` goes to now (None: none may, fail-closed): the
    first usable one in its ranking, or, for policies that do not move back, the current one
    while it stays usable; with none usable, fail-open keeps the current (or first) member."""
    ranked = [m for m in ranking if m in pool.members]
    if not pool.returning and current in pool.usable:
        return current
    chosen = next((m for m in ranked if m in pool.usable), None)
    if chosen is None and pool.fail_open and ranked:
        return current if current in ranked else ranked[0]
    return chosen


@dataclass(frozen=True, slots=True)
class ResidentEntry:
    """Where a node of one of our networks lives, and the MAC it is known by; for a pool IP,
    the pool's MAC and every member's pool address (replies come from any of them)."""

    substrate: bytes
    mac: bytes
    sources: frozenset[bytes]
    """The substrate sources a packet from this (network, IPv4) may come from."""
    steered: bytes = b""
    """A node's address `unsteered`: a gateway also takes its steered variants (anycast
    mode); empty for a pool IP."""


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    """A gateway of an edge pool, as senders address it (DESIGN.md section 2)."""

    id: GatewayId
    name: str
    pool_id: EdgePoolId
    prefix: int
    """Its host's /64 as a value (`embed_ipv4`'s first argument)."""
    prefix_bytes: bytes
    """The same, 8 bytes: what its packets' sources start with."""
    external_ip: bytes
    active: bool
    """Takes new flows (not draining)."""
    local: bool
    """Runs on this host (an edge host)."""


@dataclass(frozen=True, slots=True)
class EdgeEntry:
    """An edge pool of one of our networks (seed 1)."""

    id: EdgePoolId
    name: str
    vni: int
    nat: Nat
    fields: frozenset[HashField]
    choice: Choice
    mode: Mode
    split_above: float | None
    probe_interval: float
    gateways: Mapping[GatewayId, GatewayEntry]
    """By id, in id order (the order Maglev tables are built from)."""
    rebalance: int = 0
    """The pool's rebalance generation: a change makes the agent drop the pool's pins once."""
    anycast: int | None = None
    """`mode: anycast`: the /64 the gateways share, as a value (None in direct mode)."""


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """An external prefix of a network and the edge pool it goes to."""

    network: int
    mask: int
    prefix_length: int
    pool_id: EdgePoolId

    def covers(self, ip: bytes) -> bool:
        return int.from_bytes(ip, "big") & self.mask == self.network


@dataclass(frozen=True, slots=True)
class PublicEntry:
    """A node's public IP that this host's gateway holds (1:1 NAT in its kernel)."""

    node_ip: ipaddress.IPv4Address
    public_ip: ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class Duty:
    """What this edge host does for one network: its gateway's translation, both ways."""

    network: NetworkEntry
    gateway: GatewayEntry
    pool: EdgeEntry
    interface: str
    """The gateway-side interface the network's IPv4 packets enter the kernel by."""
    rules: tuple[EdgeRule, ...] = ()
    """The pool's firewall rules, in evaluation order."""
    public_ips: tuple[PublicEntry, ...] = ()
    """The pool's public IPs this gateway holds (their owner is this gateway)."""
    prefixes: frozenset[bytes] = frozenset()
    """The /64s (8 bytes) senders address this gateway by: its host's, and in anycast mode
    the pool's shared one."""


def tenant_interface(vni: int) -> str:
    """The name of an edge host's interface for network `vni` (IFNAMSIZ: 15 characters)."""
    return f"onm-t{vni}"


@dataclass(frozen=True, slots=True)
class Tables:
    revision: int
    ports: Mapping[str, Port]
    """Local ports by host-side interface name."""
    by_node: Mapping[NodeId, Port]
    by_substrate: Mapping[bytes, Port]
    """Local ports by their substrate address (incoming packets' destination)."""
    residents: Mapping[tuple[int, bytes], ResidentEntry]
    """(network id, IPv4) -> where that node lives: the receive-side anti-spoofing check."""
    pools: Mapping[tuple[int, bytes], PoolEntry] = field(default_factory=lambda: NOTHING)
    """(network id, pool IP) -> the live pool."""
    routes: Mapping[int, tuple[RouteEntry, ...]] = field(default_factory=lambda: NOTHING)
    """Network id -> its external routes, longest prefix first."""
    edge_pools: Mapping[EdgePoolId, EdgeEntry] = field(default_factory=lambda: NOTHING)
    gateway_sources: Mapping[tuple[int, bytes], GatewayEntry] = field(
        default_factory=lambda: NOTHING
    )
    """(network id, a gateway's /64 as 8 bytes) -> that gateway: the only substrate sources
    a packet from an external address of that network is accepted from."""
    duties: Mapping[int, Duty] = field(default_factory=lambda: NOTHING)
    """On an edge host: network id -> what this host's gateway does for it."""
    public_owners: Mapping[tuple[NodeId, EdgePoolId], GatewayId] = field(
        default_factory=lambda: NOTHING
    )
    """(local node, edge pool) -> the gateway holding the node's public IP there: the node's
    flows through that pool leave by it, where the public IP's NAT state is."""
    edge: bool = False
    """This host is in edge role."""
    prefix: int = 0
    """This host's /64, as a value."""
    agent_address: bytes = b""
    """This host's agent's own address (`onm.addressing.agent_address`): liveness probes."""
    by_steered: Mapping[bytes, Port] = field(default_factory=lambda: NOTHING)
    """Local nodes' ports by their address `unsteered`: where a packet to a steered variant
    (a gateway's reply in anycast mode) is delivered."""
    anycast_out: frozenset[bytes] = frozenset()
    """The anycast /64s (8 bytes) our nodes send to: the kernel's multipath route chooses
    the gateway of each packet there, so the datapath hands them to the kernel to route."""
    anycast_in: frozenset[bytes] = frozenset()
    """On an edge host: the anycast /64s of the pools its gateways are in (its own too)."""

    @property
    def interfaces(self) -> frozenset[str]:
        return frozenset(self.ports)

    def port_at(self, destination: bytes) -> Port | None:
        """The local port a substrate packet to `destination` is for: by its exact address,
        else, U/L clear, by its address `unsteered` (steered variants are the same node's)."""
        port = self.by_substrate.get(destination)
        if port is None and self.by_steered:
            port = self.by_steered.get(unsteered(destination))
        return port


EMPTY = Tables(
    0, MappingProxyType({}), MappingProxyType({}), MappingProxyType({}), MappingProxyType({})
)


def compile_tables(snapshot: HostSnapshot, substrate_mtu: int) -> Tables:
    networks: dict[NetworkId, NetworkEntry] = {}
    for network in snapshot.networks:
        overhead = OVERHEAD[network.encoding]
        networks[network.id] = NetworkEntry(
            id=network.id,
            vni=network.vni,
            encoding=network.encoding,
            cidrs=network.cidrs,
            gateways=frozenset(g.packed for g in network.gateways),
            router_mac=router_mac(network.vni),
            siit=SiitConfig(
                lowest_ipv6_mtu=substrate_mtu,
                ipv6_mtu=substrate_mtu,
                ipv4_mtu=substrate_mtu - overhead,
                decrement_ttl=False,  # one virtual network is one link: no router hop
                udp_zero_checksum=UdpZeroChecksum.COMPUTE,
                icmp_source_v4=network.gateway.packed,
            ),
        )
    ports: dict[str, Port] = {}
    for local in snapshot.nodes:
        node = local.node
        ports[node.interface] = Port(
            node_id=node.id,
            name=node.name,
            interface=node.interface,
            mac=parse_mac(node.mac),
            ip=node.ip.packed,
            substrate=local.substrate_address.packed,
            network=networks[node.network_id],
        )
    residents = {
        (networks[r.network_id].vni, r.ip.packed): ResidentEntry(
            r.substrate_address.packed,
            parse_mac(r.mac),
            frozenset({r.substrate_address.packed}),
            unsteered(r.substrate_address.packed),
        )
        for r in snapshot.residents
        if r.network_id in networks
    }
    by_substrate = {p.substrate: p for p in ports.values()}
    pools: dict[tuple[int, bytes], PoolEntry] = {}
    member_of: dict[NodeId, dict[bytes, bytes]] = {}
    for view in snapshot.pools:
        pool, entry = view.pool, networks.get(view.pool.network_id)
        if entry is None:
            continue
        key = (entry.vni, pool.ip.packed)
        members = {m.node_id: m.substrate_address.packed for m in view.members}
        pools[key] = PoolEntry(
            pool.id,
            pool.name,
            entry.vni,
            pool.ip.packed,
            parse_mac(pool.mac),
            pool.all_down is AllDown.FAIL_OPEN,
            pool.policy in RETURNING,
            MappingProxyType(members),
            frozenset(m.node_id for m in view.members if m.health.allows_traffic),
            pool.check,
            pool.rotation if pool.rotation != Rotation() else None,
        )
        residents[key] = ResidentEntry(b"", parse_mac(pool.mac), frozenset(members.values()))
        for m in view.members:
            member_of.setdefault(m.node_id, {})[pool.ip.packed] = m.substrate_address.packed
    for interface, port in list(ports.items()):
        sources = member_of.get(port.node_id)
        if sources:
            port = replace(port, pool_sources=MappingProxyType(sources))
            ports[interface] = port
            by_substrate[port.substrate] = port
            for ip, address in sources.items():  # delivered to the member as its pool IP
                by_substrate[address] = replace(port, ip=ip, substrate=address)
    routes, edge_pools, gateway_sources, duties = _edges(snapshot, networks)
    here = {n.node.id for n in snapshot.nodes}
    public_owners = {
        (p.public_ip.node_id, view.pool.id): p.owner
        for view in snapshot.edge_pools
        for p in view.public_ips
        if p.owner is not None and p.public_ip.node_id in here
    }
    by_steered = {unsteered(p.substrate): p for p in ports.values()}  # nodes' have U/L clear
    anycast_in = frozenset(
        d.pool.anycast.to_bytes(8, "big") for d in duties.values() if d.pool.anycast is not None
    )
    sending = {p.network.vni for p in ports.values()}
    anycast_out = frozenset(
        e.anycast.to_bytes(8, "big")
        for e in edge_pools.values()
        if e.anycast is not None and e.vni in sending
    )
    return Tables(
        revision=snapshot.revision,
        ports=MappingProxyType(ports),
        by_node=MappingProxyType({p.node_id: p for p in ports.values()}),
        by_substrate=MappingProxyType(by_substrate),
        residents=MappingProxyType(residents),
        pools=MappingProxyType(pools),
        routes=routes,
        edge_pools=edge_pools,
        gateway_sources=gateway_sources,
        duties=duties,
        public_owners=MappingProxyType(public_owners),
        by_steered=MappingProxyType(by_steered),
        anycast_out=anycast_out,
        anycast_in=anycast_in,
        edge=snapshot.host.role is HostRole.EDGE,
        prefix=snapshot.host.prefix.value,
        agent_address=agent_address(snapshot.host.prefix),
    )


def _anycast(view: EdgePoolView) -> int | None:
    """The pool's anycast /64 while it is in anycast mode (None otherwise)."""
    if view.pool.mode is not Mode.ANYCAST or view.anycast is None:
        return None
    return view.anycast.value


def _edges(
    snapshot: HostSnapshot, networks: Mapping[NetworkId, NetworkEntry]
) -> tuple[
    Mapping[int, tuple[RouteEntry, ...]],
    Mapping[EdgePoolId, EdgeEntry],
    Mapping[tuple[int, bytes], GatewayEntry],
    Mapping[int, Duty],
]:
    """Routes, edge pools, the gateways' sources and this host's duties as a gateway. A host
    with two gateways for one network (two pools) serves it with the first by pool name."""
    pools: dict[EdgePoolId, EdgeEntry] = {}
    sources: dict[tuple[int, bytes], GatewayEntry] = {}
    duties: dict[int, Duty] = {}
    for view in snapshot.edge_pools:
        pool, network = view.pool, networks.get(view.pool.network_id)
        if network is None:
            continue
        gateways = {
            g.gateway.id: GatewayEntry(
                g.gateway.id,
                g.gateway.name,
                pool.id,
                g.prefix.value,
                g.prefix.value.to_bytes(8, "big"),
                g.gateway.external_ip.packed,
                g.gateway.state is GatewayState.ACTIVE,
                g.gateway.host_id == snapshot.host.id,
            )
            for g in view.gateways
        }
        entry = EdgeEntry(
            pool.id,
            pool.name,
            network.vni,
            pool.nat,
            frozenset(pool.hash_fields),
            pool.choice,
            pool.mode,
            pool.split_above,
            pool.probe_interval,
            MappingProxyType(gateways),
            pool.rebalance,
            _anycast(view),
        )
        pools[pool.id] = entry
        for gateway in gateways.values():
            sources.setdefault((network.vni, gateway.prefix_bytes), gateway)
            if gateway.local and network.vni not in duties:
                held = tuple(
                    PublicEntry(p.node_ip, p.public_ip.ip)
                    for p in view.public_ips
                    if p.owner == gateway.id
                )
                prefixes = {gateway.prefix_bytes}
                if entry.anycast is not None:
                    prefixes.add(entry.anycast.to_bytes(8, "big"))
                interface = tenant_interface(network.vni)
                duties[network.vni] = Duty(
                    network, gateway, entry, interface, view.rules, held, frozenset(prefixes)
                )
    routes: dict[int, list[RouteEntry]] = {}
    for route in snapshot.routes:
        network = networks.get(route.network_id)
        if network is None or route.edge_pool_id not in pools:
            continue
        prefix = route.prefix
        routes.setdefault(network.vni, []).append(
            RouteEntry(
                int(prefix.network_address),
                int(prefix.netmask),
                prefix.prefixlen,
                route.edge_pool_id,
            )
        )
    return (
        MappingProxyType(
            {
                vni: tuple(sorted(entries, key=lambda r: -r.prefix_length))
                for vni, entries in routes.items()
            }
        ),
        MappingProxyType(pools),
        MappingProxyType(sources),
        MappingProxyType(duties),
    )
