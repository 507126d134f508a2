"""The agent's decision logic, sans-IO: (frame or event, now) -> actions (seed 0, FIG. 2B/4).

`AgentCore` is a thin facade over the parts, each a module that states its own rules:

- `onm.agent.resolution`: ARP from nodes, the resolution cache (refresh, static stability),
  pending requests and the negative cache, all bounded;
- `onm.agent.forwarding`: frames from nodes, their checks and where they go (node -> substrate,
  or straight to a node on this host);
- `onm.agent.superframes`: TCP super-frames (GSO) on every path;
- `onm.agent.receive`: substrate packets, their checks and delivery to nodes;
- `onm.agent.emission`: translation per encoding and what its results become;
- `onm.agent.health`: active checks of the pool members this host runs, and their reports;
- `onm.agent.egress`, `onm.agent.flows`, `onm.agent.probes`: traffic to external networks,
  the gateway each flow goes through, and the gateways' liveness (seed 1);
- `onm.agent.gateway`: on an edge host, its gateways' side of that traffic.

Time only passes when told: every call takes `now`, and `next_timer()` says when the core next
needs `on_timer(now)` without a packet (expiring resolutions, retrying pending ones, dropping ARP
requests that waited too long, forgetting refusals). Every discarded packet is counted by its
`DropReason`; nothing here raises on packet bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from onm.agent import probes, receive
from onm.agent.actions import Action, Report, Resolve, ToSubstrate
from onm.agent.counters import FROM_SUBSTRATE, TO_SUBSTRATE, Counters
from onm.agent.egress import Egress
from onm.agent.emission import Payload
from onm.agent.forwarding import Forwarding
from onm.agent.gateway import Gateway
from onm.agent.health import Monitor, health_targets
from onm.agent.resolution import (
    MAX_PENDING_ARP,
    NEGATIVE_FOR,
    REFRESH_IN_LAST,
    RETRY_AFTER,
    Resolver,
)
from onm.agent.state import CoreState
from onm.agent.tables import Tables, compile_tables
from onm.model import Resolution
from onm.model.ids import GatewayId
from onm.model.snapshot import HostSnapshot
from onm.packet.drop import DropReason
from onm.packet.icmpv6 import IcmpV6Type
from onm.packet.offload import TcpGso

__all__ = [
    "MAX_PENDING_ARP",
    "NEGATIVE_FOR",
    "REFRESH_IN_LAST",
    "RETRY_AFTER",
    "AgentCore",
    "Payload",
]


class AgentCore:
    def __init__(self, substrate_mtu: int) -> None:
        self.substrate_mtu = substrate_mtu
        self._state = CoreState()
        self.resolver = Resolver(self._state.counters, self._state.claims)
        self.egress = Egress(self._state)
        self.gateway = Gateway(self._state)
        self._forwarding = Forwarding(self._state, self.resolver, self.egress)
        self.monitor = Monitor(delivered=self._state.delivered)

    @property
    def tables(self) -> Tables:
        """The tables in force (empty until the first snapshot)."""
        return self._state.tables

    @property
    def counters(self) -> Counters:
        return self._state.counters

    def count_deliveries(self, added: Mapping[tuple[str, bytes], int]) -> None:
        """Packets a kernel datapath delivered to members as their pool IPs ((interface, pool
        IP) -> packets), counted as the core counts its own (`CoreState.count_delivery`)."""
        delivered = self._state.delivered
        for key, packets in added.items():
            delivered[key] = delivered.get(key, 0) + packets

    # --- control: snapshots and resolutions ----------------------------------------------------

    def apply_snapshot(self, snapshot: HostSnapshot, now: dt.datetime) -> list[Action]:
        """Install a snapshot's tables; keep what was resolved where it still holds."""
        tables = compile_tables(snapshot, self.substrate_mtu)
        self.resolver.apply_snapshot(snapshot, tables, now)
        self._state.tables = tables
        self._state.claims.keep(tables)
        self.monitor.update(health_targets(tables), now)
        self.egress.update(tables, tables.prefix, now)
        return [Report(snapshot.revision)]

    def resolved(
        self, request: Resolve, answer: Resolution | None, now: dt.datetime
    ) -> list[Action]:
        """The manager's answer to a `Resolve` (None: refused). Answers the ARPs waiting on it."""
        port = self._state.tables.ports.get(request.interface)
        return self.resolver.resolved(port, request, answer, now, self._state.tables)

    def resolve_failed(self, request: Resolve, now: dt.datetime) -> list[Action]:
        """The manager could not be asked (unreachable): keep forwarding with what we have."""
        return self.resolver.resolve_failed(request, now)

    def gateway_loads(self, loads: Mapping[str, int]) -> None:
        """The manager's answer to a gateway report: the other senders' pins per gateway of
        the least-loaded pools (`onm.agent.egress`)."""
        self.egress.loads({GatewayId(g): n for g, n in loads.items()})

    # --- timers --------------------------------------------------------------------------------

    def next_timer(self) -> dt.datetime | None:
        """The earliest moment the core needs `on_timer` without a packet (None: never)."""
        times = (self.resolver.next_timer(), self.monitor.next_timer(), self.egress.next_timer())
        return min((t for t in times if t), default=None)

    def on_timer(self, now: dt.datetime) -> list[Action]:
        """Do what is due at `now`: the actions (resolutions asked again) to carry out."""
        return [
            *self.resolver.on_timer(now, self._state.tables),
            *self.monitor.on_timer(now),
            *self.egress.on_timer(now),
        ]

    # --- data ----------------------------------------------------------------------------------

    def node_frame(
        self,
        interface: str,
        frame: bytes,
        now: dt.datetime,
        gso: TcpGso | None = None,
        payload: Payload | None = None,
    ) -> list[Action]:
        """A frame from a node's interface. With `gso`, a TCP super-frame its kernel left uncut:
        whole, or only its Ethernet, IPv4 and TCP headers with the TCP `payload` apart (a view
        into the datapath's buffer, which nothing here reads or copies)."""
        if interface in self.monitor.by_interface:  # a pool member's port
            self.monitor.seen(interface, now)
            answered = None if gso is not None else self.monitor.on_frame(interface, frame, now)
            if answered is not None:
                return answered
        return self._forwarding.node_frame(interface, frame, now, gso, payload)

    def substrate_packet(
        self,
        packet: bytes,
        now: dt.datetime,
        gso: TcpGso | None = None,
        payload: Payload | None = None,
    ) -> list[Action]:
        """An IPv6 packet for our /64. With `gso`, a TCP super-packet (GRO'd, or sent uncut):
        whole, or only its IPv6 and TCP headers with the TCP `payload` apart. Packets for this
        host's agent itself (liveness probes and their answers) and, on an edge host, for its
        gateways are taken apart first."""
        tables = self._state.tables
        destination = packet[24:40]
        if destination == tables.agent_address:
            return self._to_agent(packet, now)
        if tables.duties and tables.port_at(destination) is None:
            return self.gateway.from_substrate(packet, gso, payload)
        return receive.substrate_packet(self._state, packet, now, gso, payload)

    def tenant_packet(self, vni: int, packet: bytes) -> list[Action]:
        """On an edge host: an IPv4 datagram its kernel sent out of network `vni`'s interface."""
        return self.gateway.from_tenant(vni, packet)

    def _to_agent(self, packet: bytes, now: dt.datetime) -> list[Action]:
        """A probe to answer, or the answer to one of ours; anything else is counted."""
        counters = self._state.counters
        counters.count(FROM_SUBSTRATE, len(packet))
        message = probes.echo_of(packet)
        if isinstance(message, DropReason):
            counters.drop(message)
            return []
        kind, source, body = message
        if kind == IcmpV6Type.ECHO_REQUEST:
            reply = probes.answer(source, body, self._state.tables.agent_address)
            counters.count(TO_SUBSTRATE, len(reply))
            return [ToSubstrate(reply)]
        return self.egress.on_answer(source, body, now)
