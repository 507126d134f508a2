"""IPv4-in-IPv6 encapsulation (RFC 2473), onm's second encoding (DESIGN.md section 3).

For traffic SIIT cannot carry untouched (IPv4 options, fragmented ICMP, protocols whose payload
embeds addresses...), a network can choose to send the node's whole IPv4 packet inside an IPv6
header whose addresses are the same substrate addresses SIIT would use. The receiving side checks
that the outer addresses are where the inner ones really live before handing the inner packet on,
so encapsulation is no way around the anti-spoofing check.

The entry point never fragments the IPv6 packet: an inner packet that does not fit gets
Fragmentation Needed (DF set, MTU less the 40-octet overhead, RFC 2473 section 7.1) or is
fragmented as IPv4 before encapsulation (DF clear), so the exit point never reassembles.
"""

from __future__ import annotations

from dataclasses import replace

from onm.packet import icmpv4, ipv4, ipv6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.mapper import AddressMapper
from onm.packet.siit.generate import icmpv4_error
from onm.packet.siit.result import Drop, Result, SiitConfig, Translated

OVERHEAD = ipv6.HEADER_LENGTH
TUNNEL_HOP_LIMIT = 64  # RFC 2473 section 6.3: the entry point's default hop limit
DEFAULT_CONFIG = SiitConfig()


def encapsulate(
    packet: bytes, mapper: AddressMapper, config: SiitConfig = DEFAULT_CONFIG
) -> Result:
    """Wrap an IPv4 datagram in IPv6 (next header 4) addressed by the mapper."""
    parsed = ipv4.parse(packet)
    if isinstance(parsed, DropReason):
        return Drop(parsed)
    h = parsed.header
    original = packet[: h.total_length]
    is_icmp_error = icmpv4.carries_error(h.protocol, h.fragment_offset, parsed.payload)
    # Decrementing or not, nothing leaves with TTL 0 (RFC 1812 4.2.2.9, RFC 1122 3.2.1.7).
    if h.ttl == 0 or (config.decrement_ttl and h.ttl == 1):
        expired = (icmpv4.IcmpV4Type.TIME_EXCEEDED, icmpv4.TimeExceeded.TTL, bytes(4))
        return icmpv4_error(original, h, is_icmp_error, expired, config, DropReason.TTL_EXPIRED)
    if config.decrement_ttl:
        h = replace(h, ttl=h.ttl - 1)
        original = ipv4.decrement_ttl(original)
    src6 = mapper.source_4to6(h.src)
    dst6 = mapper.destination_4to6(h.dst)
    if src6 is None or dst6 is None:
        return Drop(DropReason.ADDRESS_UNMAPPABLE)
    traffic_class = h.tos if config.copy_tos else 0

    if OVERHEAD + len(original) <= config.ipv6_mtu:
        inners: tuple[bytes, ...] = (original,)
    elif h.dont_fragment:
        too_big = (
            icmpv4.IcmpV4Type.DEST_UNREACHABLE,
            icmpv4.Unreachable.FRAGMENTATION_NEEDED,
            icmpv4.mtu_rest(config.ipv6_mtu - OVERHEAD),
        )
        return icmpv4_error(original, h, is_icmp_error, too_big, config, DropReason.PACKET_TOO_BIG)
    else:
        inners = ipv4.fragment(h, parsed.payload, config.ipv6_mtu - OVERHEAD)
    return Translated(
        tuple(
            ipv6.pack_header(
                traffic_class, 0, len(inner), IpProtocol.IPV4, TUNNEL_HOP_LIMIT, src6, dst6
            )
            + inner
            for inner in inners
        )
    )


def decapsulate(packet: bytes, mapper: AddressMapper) -> bytes | DropReason:
    """The inner IPv4 datagram, if the outer addresses are the ones its addresses map to."""
    parsed = ipv6.parse(packet)
    if isinstance(parsed, DropReason):
        return parsed
    h = parsed.header
    upper = ipv6.find_upper_layer(h.next_header, parsed.payload)
    if isinstance(upper, DropReason):
        return upper
    if upper.protocol != IpProtocol.IPV4 or upper.fragment is not None:
        return DropReason.ENCAP_BAD_INNER
    inner_bytes = parsed.payload[upper.offset :]
    inner = ipv4.parse(inner_bytes)
    if isinstance(inner, DropReason):
        return inner
    if inner.header.total_length != len(inner_bytes):
        return DropReason.IPV4_BAD_TOTAL_LENGTH  # the outer Payload Length says otherwise
    if inner.header.ttl == 0:
        return DropReason.TTL_EXPIRED  # no IPv4 datagram is handed on with TTL 0
    if (
        mapper.source_6to4(h.src) != inner.header.src
        or mapper.destination_6to4(h.dst) != inner.header.dst
    ):
        return DropReason.ENCAP_ADDRESS_MISMATCH
    return inner_bytes
