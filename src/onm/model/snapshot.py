"""What one host's agent needs, compiled by the manager at one revision (DESIGN.md section 6).

Plain data, so the agent can turn it into forwarding tables (and the eBPF datapath into maps)
without asking anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from onm.addressing import HostPrefix
from onm.model.edge_pool import EdgePool, Gateway, Route
from onm.model.edge_rule import EdgeRule, NodePublicIp
from onm.model.host import Host
from onm.model.ids import GatewayId, NetworkId
from onm.model.network import Network
from onm.model.node import Node
from onm.model.pool import PoolView
from onm.model.resolution import Resolution


@dataclass(frozen=True, slots=True)
class Resident:
    """Where a node of one of the host's networks lives: what receiving agents verify against."""

    network_id: NetworkId
    ip: ipaddress.IPv4Address
    substrate_address: ipaddress.IPv6Address
    mac: str
    """Its virtual MAC: the source MAC its packets carry when delivered to a node."""


@dataclass(frozen=True, slots=True)
class LocalNode:
    node: Node
    substrate_address: ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class GatewayView:
    """A gateway of an edge pool, with the /64 of the edge host it runs on: where senders
    embed the external destination (DESIGN.md section 2)."""

    gateway: Gateway
    prefix: HostPrefix


@dataclass(frozen=True, slots=True)
class PublicIpView:
    """A node's public IP on an edge pool, with the node's address and the gateway that holds
    it (`onm.selection.public_ip.owner`; None: the pool has no active gateway there)."""

    public_ip: NodePublicIp
    node_ip: ipaddress.IPv4Address
    owner: GatewayId | None


@dataclass(frozen=True, slots=True)
class EdgePoolView:
    """An edge pool of one of the host's networks (or served by a gateway on this host)."""

    pool: EdgePool
    gateways: tuple[GatewayView, ...]
    """Ordered by id: the order every agent builds its Maglev table from."""
    rules: tuple[EdgeRule, ...] = ()
    """In evaluation order; only for hosts with a gateway in the pool."""
    public_ips: tuple[PublicIpView, ...] = ()
    """By address: all of them for hosts with a gateway in the pool, else those of the
    host's own nodes (whose replies must leave through the owner)."""
    anycast: HostPrefix | None = None
    """In anycast mode, the /64 the gateways share (the pool's own: hosts see it here)."""


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    revision: int
    """The global revision this snapshot reflects."""
    host: Host
    networks: tuple[Network, ...]
    """Every network with a node on this host."""
    nodes: tuple[LocalNode, ...]
    """The nodes this host runs."""
    residents: tuple[Resident, ...]
    """Every node of those networks, wherever it runs (anti-spoofing on receive)."""
    grants: tuple[Resolution, ...]
    """Resolutions given to this host's nodes and not yet expired."""
    pools: tuple[PoolView, ...] = ()
    """Live pools of the host's networks, with their members' health."""
    routes: tuple[Route, ...] = ()
    """The external routes of the host's networks."""
    edge_pools: tuple[EdgePoolView, ...] = ()
    """The edge pools of the host's networks; on an edge host, also those it has gateways in
    (their networks are then among `networks`, with their residents)."""
