"""Edge pools (seed 1, US9356860; DESIGN.md section 5): a network's way out to external networks
through a pool of gateways, chosen per flow by the sending node's agent before the packet
leaves its host.

- An *external network* is an IPv4 network outside the overlay (the internet, a partner's
  site): edge hosts have an interface on one, and gateways' external addresses come from it.
- An *edge pool* belongs to one tenant network and holds *gateways*: each runs on an edge host
  and has its own external address (its SNAT address with `nat: snat`).
- A *route* of the network sends an external prefix (e.g. 0.0.0.0/0) to an edge pool.

The enumerations are the values a user types, as in `onm.model.pool`.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass

from onm.addressing import HostPrefix
from onm.model.ids import EdgePoolId, ExternalId, GatewayId, HostId, NetworkId, RouteId


class HashField(enum.StrEnum):
    """What a flow's gateway is hashed on (`--hash src,dst`; onm.selection.flow)."""

    SRC = "src"
    DST = "dst"
    PROTO = "proto"
    SPORT = "sport"
    DPORT = "dport"


class Nat(enum.StrEnum):
    SNAT = "snat"  # the gateway's own external address (kernel conntrack)
    NONE = "none"  # routed as is (a pool of links to another site); may split large flows


class Choice(enum.StrEnum):
    """How a sending agent picks a flow's gateway."""

    HASH = "hash"  # Maglev over the pool's hash fields: every agent agrees
    RANDOM = "random"
    LEAST_LOADED = "least-loaded"  # fewest flows pinned now over all senders (as reported)


class Mode(enum.StrEnum):
    DIRECT = "direct"  # the agent sends to the chosen gateway's /64
    ANYCAST = "anycast"  # to a shared /64 a router spreads by ECMP, steered by source address


class GatewayState(enum.StrEnum):
    ACTIVE = "active"  # takes new flows
    DRAINING = "draining"  # keeps its flows, takes no new ones


@dataclass(frozen=True, slots=True)
class ExternalNetwork:
    id: ExternalId
    name: str
    cidr: ipaddress.IPv4Network
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EdgePool:
    id: EdgePoolId
    network_id: NetworkId
    name: str
    nat: Nat
    hash_fields: tuple[HashField, ...]
    """In `HashField` order."""
    choice: Choice
    mode: Mode
    split_above: float | None
    """`nat: none` only: a source/destination pair faster than this (bits/s) is spread."""
    probe_interval: float
    """Seconds between the sending agents' liveness probes of each gateway."""
    created_at: dt.datetime
    rebalance: int = 0
    """Bumped by an operator's rebalance: each agent that sees it change drops the pool's pins
    once, so every flow takes the table's choice again."""
    anycast: HostPrefix | None = None
    """`mode: anycast`: the /64 its gateways share (`onm.addressing.anycast_prefix`), which
    the manager allocates; the substrate's, never shown to tenants."""


@dataclass(frozen=True, slots=True)
class Gateway:
    id: GatewayId
    pool_id: EdgePoolId
    name: str
    host_id: HostId
    external_ip: ipaddress.IPv4Address
    state: GatewayState
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Route:
    id: RouteId
    network_id: NetworkId
    prefix: ipaddress.IPv4Network
    edge_pool_id: EdgePoolId
    created_at: dt.datetime
