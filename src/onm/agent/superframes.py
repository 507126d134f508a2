"""TCP super-frames (GSO): up to 64 KiB standing for many segments, on every path of the core.

Theory of operation:
- A super-frame is checked like any frame, by its headers (forwarding and receive do that
  before it gets here).
- SIIT decides on its first segment, a packet of the size a kernel will really send, and the
  translated headers go in front of the whole payload (checksum field left partial for whoever
  cuts it). What that segment gets instead (an error, fragmentation, a segment too big for the
  node) makes the frame be cut here and go on segment by segment, so nodes see the same rules
  either way.
- Encapsulation cuts what it sends (GSO cannot describe IPv4 in IPv6) and passes what it
  receives whole, once opened.
- To a node on the same host: passed on whole, its checksum field written partial again, when
  its first segment would cross the substrate (else what a node elsewhere would get instead).
The payload is never read or copied: a view into the datapath's buffer passes straight through.
"""

from __future__ import annotations

from collections.abc import Callable

from onm.agent.actions import Action, ToNode, ToSubstrate
from onm.agent.counters import TO_NODES, TO_SUBSTRATE
from onm.agent.emission import CROSSING, IPV4, Payload, emit, to_ipv4, to_ipv6
from onm.agent.state import CoreState
from onm.agent.tables import Port
from onm.model import Encoding
from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.mapper import PairMapper
from onm.packet.offload import TcpGso
from onm.packet.siit import Translated
from onm.packet.siit.plain import plain_super_4to6, plain_super_6to4


def split(state: CoreState, packet: bytes, payload: Payload | None) -> tuple[bytes, Payload] | None:
    """A super-packet as (IP and TCP headers, TCP payload); None (counted) if it is none."""
    if payload is not None:
        return packet, payload
    parts = offload.split_super(packet)
    if isinstance(parts, DropReason):
        state.counters.drop(parts)
        return None
    headers, end = parts
    return packet[:headers], memoryview(packet)[headers:end]


def to_local(
    state: CoreState,
    packet: bytes,
    payload: Payload | None,
    port: Port,
    local: Port,
    mapper: PairMapper,
    gso: TcpGso,
) -> list[Action]:
    """A node's TCP super-frame for a node on this host: on whole when its first segment would
    cross the substrate (what a node elsewhere would get instead if not)."""
    parts = split(state, packet, payload)
    if parts is None:
        return []
    headers, body = parts
    network = port.network
    quick = None
    if network.encoding is Encoding.SIIT:
        quick = plain_super_4to6(headers, len(body), gso.size, mapper, network.siit)
    if quick is None:
        first = offload.first_segment(headers, body, gso.size)
        if isinstance(first, DropReason):
            state.counters.drop(first)
            return []
        verdict = CROSSING[network.encoding](first, mapper, network.siit)
        if not isinstance(verdict, Translated):
            return emit(state.counters, verdict, port, toward_node=False)
    frame = offload.super_headers(headers, len(body), local.mac + port.mac + IPV4)
    if isinstance(frame, DropReason):
        state.counters.drop(frame)
        return []
    state.counters.count(TO_NODES, len(frame) + len(body))
    return [ToNode(local.interface, frame, gso, body)]


def _siit_out(
    state: CoreState, headers: bytes, body: Payload, port: Port, mapper: PairMapper, gso: TcpGso
) -> list[Action] | None:
    """SIIT re-headers a super-frame whole when its first segment translates to one packet;
    None: it must be cut."""
    network = port.network
    quick = plain_super_4to6(headers, len(body), gso.size, mapper, network.siit)
    if quick is not None:
        state.counters.count(TO_SUBSTRATE, len(quick) + len(body))
        return [ToSubstrate(quick, gso, body)]
    first = offload.first_segment(headers, body, gso.size)
    if isinstance(first, DropReason):
        state.counters.drop(first)
        return []
    result = to_ipv6(first, mapper, network.siit)
    if not isinstance(result, Translated):  # what every segment would get
        return emit(state.counters, result, port, toward_node=False)
    if len(result.packets) == 1:
        whole = offload.super_headers(result.packets[0], len(body))
        if not isinstance(whole, DropReason):
            state.counters.count(TO_SUBSTRATE, len(whole) + len(body))
            return [ToSubstrate(whole, gso, body)]
    return None


def _cut_out(
    state: CoreState, headers: bytes, body: Payload, port: Port, mapper: PairMapper, gso: TcpGso
) -> list[Action] | None:
    """Encapsulation never sends a super-packet: GSO cannot describe IPv4 in IPv6."""
    return None


SuperOut = Callable[[CoreState, bytes, Payload, Port, PairMapper, TcpGso], list[Action] | None]
WHOLE_OUT: dict[Encoding, SuperOut] = {Encoding.SIIT: _siit_out, Encoding.ENCAP: _cut_out}
"""How each encoding sends a super-frame whole onto the substrate (None: cut it first)."""


def to_substrate(
    state: CoreState,
    packet: bytes,
    payload: Payload | None,
    port: Port,
    mapper: PairMapper,
    gso: TcpGso,
) -> list[Action]:
    """A node's TCP super-frame for the substrate: whole where its encoding can, else cut."""
    parts = split(state, packet, payload)
    if parts is None:
        return []
    headers, body = parts
    network = port.network
    whole = WHOLE_OUT[network.encoding](state, headers, body, port, mapper, gso)
    if whole is not None:
        return whole
    pieces = offload.segment_tcp(b"".join((headers, body)), gso.size)
    if isinstance(pieces, DropReason):
        state.counters.drop(pieces)
        return []
    crossing = CROSSING[network.encoding]
    actions: list[Action] = []
    for piece in pieces:
        actions += emit(state.counters, crossing(piece, mapper, network.siit), port, False)
    return actions


def to_node(
    state: CoreState,
    packet: bytes,
    payload: Payload | None,
    port: Port,
    mapper: PairMapper,
    sender_mac: bytes,
    gso: TcpGso,
    opened: bool,
) -> list[Action]:
    """A TCP super-packet from the substrate, already opened when encapsulated (`opened`):
    decided on by its first segment (SIIT), then handed to the node whole when that segment
    fits its MTU and the whole fits one IPv4 datagram; otherwise cut here."""
    network = port.network
    counters = state.counters
    parts = split(state, packet, payload)
    if parts is None:
        return []
    headers, body = parts
    siit = not opened
    if siit:
        quick = plain_super_6to4(
            headers, len(body), gso.size, mapper, network.siit, state.next_identification()
        )
        if quick is not None:
            frame = port.mac + sender_mac + IPV4 + quick
            counters.count(TO_NODES, len(frame) + len(body))
            return [ToNode(port.interface, frame, gso, body)]
    first: bytes | DropReason = offload.first_segment(headers, body, gso.size)
    if isinstance(first, DropReason):
        counters.drop(first)
        return []
    if siit:
        result = to_ipv4(first, mapper, network.siit, state.identification)
        if not isinstance(result, Translated):  # what every segment would get
            return emit(counters, result, port, True, sender_mac)
        first = result.packets[0] if len(result.packets) == 1 else b""
    if 0 < len(first) <= network.siit.ipv4_mtu:
        made = offload.super_headers(first, len(body), port.mac + sender_mac + IPV4)
        if not isinstance(made, DropReason):
            counters.count(TO_NODES, len(made) + len(body))
            return [ToNode(port.interface, made, gso, body)]
    pieces = offload.segment_tcp(b"".join((headers, body)), gso.size)
    if isinstance(pieces, DropReason):
        counters.drop(pieces)
        return []
    if not siit:
        return emit(counters, Translated(tuple(pieces)), port, True, sender_mac)
    actions: list[Action] = []
    for piece in pieces:
        result = to_ipv4(piece, mapper, network.siit, state.next_identification())
        actions += emit(counters, result, port, True, sender_mac)
    return actions
