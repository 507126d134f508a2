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

from onm.model import Encoding, NetworkId, NodeId
from onm.model.ids import PoolId
from onm.model.pool import AllDown, HealthCheck, Rotation
from onm.model.snapshot import HostSnapshot
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

    @property
    def interfaces(self) -> frozenset[str]:
        return frozenset(self.ports)


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
    return Tables(
        revision=snapshot.revision,
        ports=MappingProxyType(ports),
        by_node=MappingProxyType({p.node_id: p for p in ports.values()}),
        by_substrate=MappingProxyType(by_substrate),
        residents=MappingProxyType(residents),
        pools=MappingProxyType(pools),
    )
