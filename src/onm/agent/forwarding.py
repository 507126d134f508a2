"""Frames from nodes: the checks every frame passes, then where it goes (node -> substrate).

Theory of operation:
- Until a snapshot is applied, the agent knows no port, so it forwards nothing: isolation and
  anti-spoofing come first.
- A frame from a node must carry that node's own MAC (and, for IPv4 and ARP, its own IP).
  ARP is `onm.agent.resolution`'s; every other EtherType is dropped.
- An IPv4 frame goes where its destination MAC was resolved to: delivered directly when the
  target is local, else translated (SIIT or encapsulation, per network: `emission.CROSSING`)
  onto the substrate. Either way it first passes `admission.check_ipv4` for what its network
  carries, then what the translation (or encapsulation) toward that node would decide: a frame
  for a node next door is refused, or answered with an ICMP error, exactly when it would be for
  a node on another host, and delivered as sent otherwise.
- A frame to the router MAC is routed: inside the node's network (never to a gateway address),
  or out of it by the network's routes to edge pools (`onm.agent.egress`).
- A resolution in use is refreshed in the last part of its lifetime (`Lifetime.due`); an unresolved
  destination is dropped and asked about in the background.
"""

from __future__ import annotations

import datetime as dt

from onm.agent.actions import Action, ToNode
from onm.agent.counters import FROM_NODES, TO_NODES
from onm.agent.egress import Egress
from onm.agent.emission import ARP, CROSSING, IPV4, Payload, emit, host_unreachable
from onm.agent.resolution import Resolver
from onm.agent.state import CoreState
from onm.agent.superframes import to_local, to_substrate
from onm.agent.tables import Port
from onm.model import Encoding
from onm.packet import admission
from onm.packet.admission import Carried
from onm.packet.drop import DropReason
from onm.packet.mapper import PairMapper
from onm.packet.offload import TcpGso
from onm.packet.siit import Drop, IcmpError, SiitConfig, Translated

CARRIED: dict[Encoding, Carried] = {Encoding.SIIT: admission.SIIT, Encoding.ENCAP: admission.ENCAP}
"""What each encoding carries (admission's table of protocols and options)."""


def all_down(packet: bytes, config: SiitConfig) -> IcmpError | Drop:
    """A fail-closed pool's answer: ICMP host unreachable from the gateway at once (RFC 792),
    so a client fails fast instead of timing out."""
    return host_unreachable(packet, config, DropReason.POOL_ALL_DOWN)


class Forwarding:
    """Frames from local nodes' interfaces, decided against the tables and the resolutions."""

    def __init__(self, state: CoreState, resolver: Resolver, egress: Egress) -> None:
        self.state = state
        self.resolver = resolver
        self.egress = egress
        self._by_mac = resolver.by_mac
        self._cache = resolver.cache

    def node_frame(
        self,
        interface: str,
        frame: bytes,
        now: dt.datetime,
        gso: TcpGso | None = None,
        payload: Payload | None = None,
    ) -> list[Action]:
        """A frame from a node's interface (see `AgentCore.node_frame`)."""
        counters = self.state.counters
        counters.count(FROM_NODES, len(frame) + (0 if payload is None else len(payload)))
        port = self.state.tables.ports.get(interface)
        if port is None:
            counters.drop(DropReason.UNKNOWN_PORT)
            return []
        if len(frame) < 14:
            counters.drop(DropReason.ETHERNET_TRUNCATED)
            return []
        if frame[6:12] != port.mac:
            counters.drop(DropReason.SPOOFED_SOURCE_MAC)
            return []
        ethertype = frame[12:14]
        if ethertype == IPV4:
            return self._ipv4(port, frame, now, gso, payload)
        if ethertype == ARP and gso is None:
            return self.resolver.node_arp(port, frame, now)
        counters.drop(DropReason.ETHERTYPE_UNSUPPORTED)
        return []

    def _ipv4(
        self,
        port: Port,
        frame: bytes,
        now: dt.datetime,
        gso: TcpGso | None,
        payload: Payload | None,
    ) -> list[Action]:
        state = self.state
        counters = state.counters
        resolver = self.resolver
        packet = frame[14:]
        network = port.network
        size = None if payload is None else len(packet) + len(payload)
        refused = admission.check_ipv4(packet, CARRIED[network.encoding], size)
        if refused is not None:
            counters.drop(refused)
            return []
        source = packet[12:16]
        source_substrate = port.substrate
        if source != port.ip:  # a pool member answering from the pool IP may; nobody else
            pooled = port.pool_sources.get(source)
            if pooled is None:
                counters.drop(DropReason.SPOOFED_SOURCE_IP)
                return state.claims.saw(port, source, now)
            source_substrate = pooled
        target = packet[16:20]
        dst_mac = frame[0:6]
        if dst_mac != network.router_mac:
            resolved_ip = self._by_mac.get((port.interface, dst_mac))
            if resolved_ip is None:
                return resolver.miss(port, target, now, DropReason.NO_MAPPING, dst_mac)
            if resolved_ip != target:
                counters.drop(DropReason.DESTINATION_MISMATCH)
                return []
        elif not network.contains(target):  # outside the network: its routes, its edge pools
            return self.egress.packet(port, packet, source_substrate, now, gso, payload)
        elif target in network.gateways:
            counters.drop(DropReason.NO_ROUTE)
            return []
        mapping = self._cache.get((port.interface, target))
        if mapping is None:
            return resolver.miss(port, target, now, DropReason.NO_MAPPING)
        actions: list[Action] = []
        if mapping.lifetime.due(now):
            actions.extend(resolver.refresh(port, target, now))
        if not mapping.substrate:  # a pool with no member taking traffic, failing closed
            return actions + emit(counters, all_down(packet, network.siit), port, False)
        if mapping.rotation is not None:  # a rotating ranked pool counts what it was sent
            resolver.sent_to_pool(mapping, state.tables.pools.get((network.vni, target)), now)
        local = state.tables.by_substrate.get(mapping.substrate)
        if local is not None and local.network is not network:
            counters.drop(DropReason.NETWORK_MISMATCH)
            return actions
        mapper = PairMapper(source, source_substrate, target, mapping.substrate)
        if local is not None and local.pool_sources:
            state.count_delivery(local)
        if local is None:
            if gso is not None:
                return actions + to_substrate(state, packet, payload, port, mapper, gso)
            crossed = CROSSING[network.encoding](packet, mapper, network.siit)
            return actions + emit(counters, crossed, port, toward_node=False)
        if gso is not None:
            return actions + to_local(state, packet, payload, port, local, mapper, gso)
        verdict = CROSSING[network.encoding](packet, mapper, network.siit)  # as sent elsewhere
        if not isinstance(verdict, Translated):
            return actions + emit(counters, verdict, port, toward_node=False)
        out = local.mac + port.mac + IPV4 + packet
        counters.count(TO_NODES, len(out))
        actions.append(ToNode(local.interface, out))
        return actions
