"""What the agent's core asks its adapters to do: small typed values, never side effects."""

from __future__ import annotations

from dataclasses import dataclass

from onm.model import NetworkId, NodeId
from onm.model.ids import EdgePoolId, GatewayId, PoolId
from onm.model.pool import Health
from onm.packet.offload import TcpGso


@dataclass(frozen=True, slots=True)
class ToNode:
    """Send `frame` out of the host-side interface of a local node."""

    interface: str
    frame: bytes
    gso: TcpGso | None = None
    """Set: a TCP super-frame (checksum field partial) to go out whole."""
    payload: bytes | memoryview = b""
    """What follows `frame` on the wire: a super-frame's TCP payload, left where it arrived."""


@dataclass(frozen=True, slots=True)
class ToSubstrate:
    """Send an IPv6 `packet` onto the substrate (the kernel routes it by destination)."""

    packet: bytes
    gso: TcpGso | None = None
    """Set: a TCP super-packet (checksum field partial), to be cut on its way out."""
    payload: bytes | memoryview = b""
    """What follows `packet` on the wire: a super-packet's TCP payload, left where it arrived."""


@dataclass(frozen=True, slots=True)
class Resolve:
    """Ask the manager where `ip` lives for the node behind `interface`."""

    network_id: NetworkId
    requester_id: NodeId
    interface: str
    ip: bytes


@dataclass(frozen=True, slots=True)
class Report:
    """Tell the manager which revision is now applied."""

    revision: int


@dataclass(frozen=True, slots=True)
class MemberHealth:
    pool_id: PoolId
    node_id: NodeId
    health: Health
    load: float = 0.0
    """Packets per second delivered to the member as the pool, since the last report."""


@dataclass(frozen=True, slots=True)
class ReportHealth:
    """Tell the manager the health of the pool members this host checks."""

    members: tuple[MemberHealth, ...]


@dataclass(frozen=True, slots=True)
class Claim:
    node_id: NodeId
    ip: bytes
    """An address the node used that is not its own (onm.agent.claims)."""


@dataclass(frozen=True, slots=True)
class ReportClaims:
    """Tell the manager addresses local nodes use that are not their own (detection)."""

    claims: tuple[Claim, ...]


@dataclass(frozen=True, slots=True)
class GatewayReport:
    gateway_id: GatewayId
    pool_id: EdgePoolId
    alive: bool
    pinned: int = 0
    """Flows of this host's nodes pinned to it now."""
    flows: int = 0
    """New flows this host's nodes started through it (since the agent started)."""
    packets: int = 0
    bytes: int = 0
    serves: int | None = None
    """This host runs it, for network `serves` (the VNI its firewall counters are named by)."""
    rules: tuple[tuple[str, int], ...] = ()
    """(rule id, packets) its firewall counted: filled by the link from the kernel
    (`onm.agent.gateway_reports.with_counts`), only for a gateway this host runs."""
    defaults: tuple[tuple[str, int], ...] = ()
    """(default verdict, packets), likewise."""


@dataclass(frozen=True, slots=True)
class ReportGateways:
    """Tell the manager how this agent sees the edge gateways it probes or serves
    (`onm.agent.gateway_reports`); `changed` (for the log too): those found dead, or back,
    since the last report."""

    gateways: tuple[GatewayReport, ...]
    changed: tuple[GatewayReport, ...] = ()


@dataclass(frozen=True, slots=True)
class ToTenant:
    """On an edge host: hand an IPv4 datagram to network `vni`'s interface (its kernel side:
    NAT, firewall, the external network)."""

    vni: int
    packet: bytes


Action = (
    ToNode
    | ToSubstrate
    | ToTenant
    | Resolve
    | Report
    | ReportHealth
    | ReportClaims
    | ReportGateways
)
