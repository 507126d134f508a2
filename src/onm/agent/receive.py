"""Packets from the substrate: the checks every one passes, then delivery to a local node.

Theory of operation:
- A substrate packet is accepted only for a local node's substrate address (or one of its
  steered variants, `onm.addressing.steer`: a gateway's reply in anycast mode), from the address
  where (network id, source IPv4) really lives (both read from the source address by
  `onm.addressing.network_and_ipv4`), on another host (a local node's packets never cross the
  substrate), and only as an agent sends it (`admission.check_ipv6_header` and
  `check_ipv6_payload`; for encapsulation the inner datagram passes `check_ipv4` too).
- A packet from an external address (seed 1: a reply, or an inbound connection to a public IP)
  is accepted only from the /64 of a gateway of one of the network's edge pools, and only for
  an address outside the network; it is delivered from the network's router MAC.
- It is translated back (SIIT) or opened (encapsulation), per the network's encoding
  (`TO_NODE`), and delivered with the sender's virtual MAC as source.
- The agent is no router hop inside a network (one virtual network is one link): TTL and hop
  limit are carried across unchanged, and a datagram with TTL (hop limit) 0 is refused.
- An ICMPv6 error the translator produces about a substrate packet goes back to its sender.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from onm.addressing import network_and_ipv4
from onm.agent.actions import Action
from onm.agent.counters import FROM_SUBSTRATE
from onm.agent.emission import Payload, emit, to_ipv4
from onm.agent.forwarding import CARRIED
from onm.agent.state import CoreState
from onm.agent.superframes import to_node
from onm.agent.tables import NetworkEntry, Port, Tables
from onm.model import Encoding
from onm.packet import admission, encap
from onm.packet.drop import DropReason
from onm.packet.mapper import PairMapper
from onm.packet.offload import TcpGso
from onm.packet.siit import Result, Translated


def decapsulate(state: CoreState, packet: bytes, mapper: PairMapper) -> bytes | None:
    """The IPv4 datagram inside, if it is one the network carries (None: counted)."""
    inner = encap.decapsulate(packet, mapper)
    if isinstance(inner, DropReason):
        state.counters.drop(inner)
        return None
    refused = admission.check_ipv4(inner, admission.ENCAP, padded=False)
    if refused is not None:
        state.counters.drop(refused)
        return None
    return inner


def _siit_to_node(state: CoreState, packet: bytes, port: Port, mapper: PairMapper) -> Result | None:
    return to_ipv4(packet, mapper, port.network.siit, state.next_identification())


def _encap_to_node(
    state: CoreState, packet: bytes, port: Port, mapper: PairMapper
) -> Result | None:
    inner = decapsulate(state, packet, mapper)
    return None if inner is None else Translated((inner,))


ToNodeFn = Callable[[CoreState, bytes, Port, PairMapper], Result | None]
TO_NODE: dict[Encoding, ToNodeFn] = {Encoding.SIIT: _siit_to_node, Encoding.ENCAP: _encap_to_node}
"""What a substrate packet becomes for the node, per encoding (None: dropped, counted)."""


def _from_gateway(
    tables: Tables, network: NetworkEntry, vni: int, source: bytes, sender_ip: bytes
) -> bool:
    """Is `source` an external address of this network, sent by a gateway of its edge pools?"""
    return (vni, source[:8]) in tables.gateway_sources and not network.contains(sender_ip)


def substrate_packet(
    state: CoreState,
    packet: bytes,
    now: dt.datetime,
    gso: TcpGso | None = None,
    payload: Payload | None = None,
) -> list[Action]:
    """An IPv6 packet for our /64 (see `AgentCore.substrate_packet`)."""
    counters = state.counters
    tables = state.tables
    size = len(packet) + (0 if payload is None else len(payload))
    counters.count(FROM_SUBSTRATE, size)
    refused = admission.check_ipv6_header(packet, size)
    if refused is not None:
        counters.drop(refused)
        return []
    destination = packet[24:40]
    port = tables.port_at(destination)
    if port is None:
        counters.drop(DropReason.NOT_LOCAL_DESTINATION)
        return []
    source = packet[8:24]
    vni, sender_ip = network_and_ipv4(source)
    network = port.network
    if vni != network.vni:
        counters.drop(DropReason.NETWORK_MISMATCH)
        return []
    resident = tables.residents.get((vni, sender_ip))
    # A local node's packets are delivered here directly and never cross the substrate: one
    # that arrives from there with its address was sent by another host.
    local_source = source in tables.by_substrate
    if resident is not None and source in resident.sources and not local_source:
        sender_mac = resident.mac
    elif resident is None and _from_gateway(tables, network, vni, source, sender_ip):
        sender_mac = network.router_mac  # from outside, through the router
    else:
        counters.drop(DropReason.SPOOFED_SUBSTRATE_SOURCE)
        return []
    refused = admission.check_ipv6_payload(packet, CARRIED[network.encoding])
    if refused is not None:
        counters.drop(refused)
        return []
    if port.pool_sources:  # a pool member's port: count what it is sent (one check per packet)
        state.count_delivery(port, 1 if gso is None else max(1, -(-size // max(gso.size, 1))))
    mapper = PairMapper(port.ip, destination, sender_ip, source)  # the port's, or steered
    if gso is not None:
        opened = network.encoding is Encoding.ENCAP
        if opened:  # rare (GRO'd IPv4 in IPv6): opened as a whole packet
            whole = packet if payload is None else b"".join((packet, payload))
            inner = decapsulate(state, whole, mapper)
            if inner is None:
                return []
            packet, payload = inner, None
        return to_node(state, packet, payload, port, mapper, sender_mac, gso, opened)
    result = TO_NODE[network.encoding](state, packet, port, mapper)
    if result is None:
        return []
    return emit(counters, result, port, toward_node=True, sender_mac=sender_mac)
