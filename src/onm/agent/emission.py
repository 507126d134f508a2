"""Translation per encoding, and what its results become: actions toward nodes or the substrate.

One table per direction says how a network's encoding carries a datagram (`CROSSING`: a node's
IPv4 datagram onto the substrate; SIIT re-headers it, encapsulation wraps it), so forwarding and
super-frames never branch on the encoding by hand. `emit` turns a translator's result into
actions: a `Drop` is counted by its reason, an `IcmpError` goes back to whoever sent the
datagram (to the node, from its network's router MAC; or onto the substrate, to the sending
agent), and translated packets go on, each counted by direction.
"""

from __future__ import annotations

from collections.abc import Callable

from onm.agent.actions import Action, ToNode, ToSubstrate
from onm.agent.counters import TO_NODES, TO_SUBSTRATE, Counters
from onm.agent.tables import Port
from onm.model import Encoding
from onm.packet import encap, icmpv4, ipv4
from onm.packet.drop import DropReason
from onm.packet.ethernet import BROADCAST, EtherType
from onm.packet.mapper import PairMapper
from onm.packet.siit import (
    Drop,
    IcmpError,
    Result,
    SiitConfig,
    Translated,
    translate_4to6,
    translate_6to4,
)
from onm.packet.siit.generate import icmpv4_error
from onm.packet.siit.plain import plain_4to6, plain_6to4

IPV4 = EtherType.IPV4.to_bytes(2, "big")
ARP = EtherType.ARP.to_bytes(2, "big")

Payload = bytes | memoryview
"""A super-frame's TCP payload: only ever passed on, so a view into a receive buffer will do."""


def to_ipv6(packet: bytes, mapper: PairMapper, config: SiitConfig) -> Result:
    """SIIT 4 -> 6: plain TCP/UDP the short way, the rest by the full translator."""
    plain = plain_4to6(packet, mapper, config)
    return translate_4to6(packet, mapper, config) if plain is None else Translated((plain,))


def to_ipv4(packet: bytes, mapper: PairMapper, config: SiitConfig, identification: int) -> Result:
    """SIIT 6 -> 4: plain TCP/UDP the short way, the rest by the full translator."""
    plain = plain_6to4(packet, mapper, config, identification)
    if plain is None:
        return translate_6to4(packet, mapper, config, identification)
    return Translated((plain,))


Crossing = Callable[[bytes, PairMapper, SiitConfig], Result]

CROSSING: dict[Encoding, Crossing] = {Encoding.SIIT: to_ipv6, Encoding.ENCAP: encap.encapsulate}
"""What a node's datagram becomes on the substrate, per its network's encoding: also the verdict
for one to a node next door, which must meet the same rules."""


_UNREACHABLE = (icmpv4.IcmpV4Type.DEST_UNREACHABLE, icmpv4.Unreachable.HOST, bytes(4))


def host_unreachable(packet: bytes, config: SiitConfig, reason: DropReason) -> IcmpError | Drop:
    """ICMP host unreachable about a node's datagram, from its network's gateway address (RFC
    792): for traffic with nowhere to go (a fail-closed pool, an edge pool with no gateway)."""
    parsed = ipv4.parse(packet)
    if isinstance(parsed, DropReason):
        return Drop(parsed)
    h = parsed.header
    is_error = icmpv4.carries_error(h.protocol, h.fragment_offset, parsed.payload)
    original = packet[: h.total_length]
    return icmpv4_error(original, h, is_error, _UNREACHABLE, config, reason)


def emit(
    counters: Counters,
    result: Translated | Drop | IcmpError,
    port: Port,
    toward_node: bool,
    sender_mac: bytes = BROADCAST,
) -> list[Action]:
    """The actions for a translator's `result` about a datagram of (or for) `port`'s node."""
    if isinstance(result, Drop):
        counters.drop(result.reason)
        return []
    if isinstance(result, IcmpError):
        counters.drop(result.reason)
        if toward_node:  # an ICMPv6 error about the substrate packet: back to its sender
            counters.count(TO_SUBSTRATE, len(result.packet))
            return [ToSubstrate(result.packet)]
        frame = port.mac + port.network.router_mac + IPV4 + result.packet
        counters.count(TO_NODES, len(frame))
        return [ToNode(port.interface, frame)]
    if toward_node:
        out: list[Action] = []
        for packet in result.packets:
            frame = port.mac + sender_mac + IPV4 + packet
            counters.count(TO_NODES, len(frame))
            out.append(ToNode(port.interface, frame))
        return out
    for packet in result.packets:
        counters.count(TO_SUBSTRATE, len(packet))
    return [ToSubstrate(packet) for packet in result.packets]
