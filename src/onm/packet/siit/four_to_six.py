"""IPv4 -> IPv6 translation (RFC 7915 section 4).

Theory of operation: the IPv4 header is replaced by an IPv6 header whose addresses come from the
mapper; the payload is left as it is, except that TCP and UDP checksums are updated incrementally
for the pseudo-header change (RFC 1624), and ICMPv4 is rewritten as ICMPv6, including the packet
quoted inside errors. A Fragment Header appears only when the IPv4 packet is a fragment or had to
be fragmented because DF was clear (section 4 and 4.1). Every outcome is a value: `Translated`,
`Drop` or `IcmpError`.
"""

from __future__ import annotations

import struct

from onm.packet import checksum, icmpv4, icmpv6, ipv4, rfc4884
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.ipv6 import FRAGMENT_HEADER_LENGTH, HEADER_LENGTH, pack_header
from onm.packet.mapper import AddressMapper
from onm.packet.siit import icmp_map
from onm.packet.siit.generate import IPV6_ERROR_LIMIT, icmpv4_error, is_unicast_v4
from onm.packet.siit.icmp_map import Rest
from onm.packet.siit.result import Drop, Result, SiitConfig, Translated, UdpZeroChecksum
from onm.packet.siit.transport import CHECKSUM_AT, move_checksum, retype_icmp

DEFAULT_CONFIG = SiitConfig()
IGMP = 2  # IANA protocol number; RFC 7915 section 4.2: IGMP SHOULD be silently dropped.
MAX_DATAGRAM = 0xFFFF  # RFC 791 section 3.1: Total Length is 16 bits, fragments included.

_FRAGMENT = struct.Struct("!BxHI")


def translate_4to6(
    packet: bytes, mapper: AddressMapper, config: SiitConfig = DEFAULT_CONFIG
) -> Result:
    """Translate one IPv4 datagram to IPv6 (one packet, or several fragments)."""
    parsed = ipv4.parse(packet)
    if isinstance(parsed, DropReason):
        return Drop(parsed)
    h = parsed.header
    payload = parsed.payload
    if h.fragment_offset * 8 + h.total_length > MAX_DATAGRAM:
        # A fragment that ends past the largest datagram belongs to none (and its pieces'
        # offsets would not fit the Fragment Header).
        return Drop(DropReason.IPV4_BAD_FRAGMENT)
    original = packet[: h.total_length]
    is_icmp_error = icmpv4.carries_error(h.protocol, h.fragment_offset, payload)

    # RFC 7915 4.1: an unexpired source route MUST cause a drop; SHOULD answer 3/5.
    if h.options:
        route = ipv4.has_unexpired_source_route(h.options)
        if isinstance(route, DropReason):
            return Drop(route)
        if route:
            unreachable = (
                icmpv4.IcmpV4Type.DEST_UNREACHABLE,
                icmpv4.Unreachable.SOURCE_ROUTE_FAILED,
                bytes(4),
            )
            return icmpv4_error(
                original, h, is_icmp_error, unreachable, config, DropReason.IPV4_SOURCE_ROUTE
            )
    # RFC 7915 4.1: illegal sources are dropped, except in ICMP errors (kept for troubleshooting).
    if not is_icmp_error and not is_unicast_v4(h.src):
        return Drop(DropReason.IPV4_ILLEGAL_SOURCE)
    ttl = h.ttl
    # Decrementing or not, nothing leaves with TTL 0 (RFC 1812 4.2.2.9, RFC 1122 3.2.1.7).
    if ttl == 0 or (config.decrement_ttl and ttl == 1):
        expired = (icmpv4.IcmpV4Type.TIME_EXCEEDED, icmpv4.TimeExceeded.TTL, bytes(4))
        return icmpv4_error(original, h, is_icmp_error, expired, config, DropReason.TTL_EXPIRED)
    if config.decrement_ttl:
        ttl -= 1

    src6 = mapper.source_4to6(h.src)
    dst6 = mapper.destination_4to6(h.dst)
    if src6 is None or dst6 is None:
        return Drop(DropReason.ADDRESS_UNMAPPABLE)

    fragmented = h.more_fragments or h.fragment_offset != 0
    protocol = h.protocol
    if protocol == IpProtocol.ICMP:
        if fragmented:
            return Drop(DropReason.ICMP_FRAGMENTED)
        icmp = _icmp_4to6(payload, src6, dst6, mapper, config)
        if isinstance(icmp, DropReason):
            return Drop(icmp)
        payload = icmp
        protocol = IpProtocol.ICMPV6
    elif protocol == IGMP:
        return Drop(DropReason.PROTOCOL_UNTRANSLATABLE)
    elif protocol in CHECKSUM_AT and h.fragment_offset == 0:
        adjusted = _transport_4to6(protocol, payload, h, src6, dst6, fragmented, config)
        if adjusted is DropReason.UDP_ZERO_CHECKSUM:
            # RFC 7915 4.5 says drop and log, not "silently": 4.4's default error applies.
            prohibited = (
                icmpv4.IcmpV4Type.DEST_UNREACHABLE,
                icmpv4.Unreachable.ADMIN_PROHIBITED,
                bytes(4),
            )
            return icmpv4_error(original, h, is_icmp_error, prohibited, config, adjusted)
        if isinstance(adjusted, DropReason):
            return Drop(adjusted)
        payload = adjusted

    traffic_class = h.tos if config.copy_tos else 0
    size = HEADER_LENGTH + len(payload) + (FRAGMENT_HEADER_LENGTH if fragmented else 0)
    if h.dont_fragment:
        if size > config.ipv6_mtu:
            # RFC 7915 4.1: MUST send Fragmentation Needed; the sender's packets grow by 20
            # (28 with a Fragment Header), so that is what the advertised MTU leaves room for.
            growth = size - h.total_length
            too_big = (
                icmpv4.IcmpV4Type.DEST_UNREACHABLE,
                icmpv4.Unreachable.FRAGMENTATION_NEEDED,
                icmpv4.mtu_rest(config.ipv6_mtu - growth),
            )
            return icmpv4_error(
                original, h, is_icmp_error, too_big, config, DropReason.PACKET_TOO_BIG
            )
        limit = size
    else:
        limit = min(config.lowest_ipv6_mtu, config.ipv6_mtu)

    if size <= limit and not fragmented:
        header = pack_header(traffic_class, 0, len(payload), protocol, ttl, src6, dst6)
        return Translated((header + payload,))
    return Translated(
        _fragments(
            payload,
            (traffic_class, ttl, src6, dst6, protocol),
            h.fragment_offset * 8,
            h.more_fragments,
            h.identification,
            limit,
        )
    )


def _fragments(
    payload: bytes,
    fields: tuple[int, int, bytes, bytes, int],
    base: int,
    more: bool,
    identification: int,
    limit: int,
) -> tuple[bytes, ...]:
    """IPv6 fragments (RFC 8200 section 4.5) of a payload that starts `base` octets in.

    The low 16 bits of the identification are the IPv4 ones, carried end to end (RFC 7915 4).
    """
    traffic_class, hop_limit, src, dst, protocol = fields
    room = limit - HEADER_LENGTH - FRAGMENT_HEADER_LENGTH
    step = len(payload) if len(payload) <= room else room & ~7
    out = []
    for start in range(0, max(len(payload), 1), max(step, 8)):
        chunk = payload[start : start + step]
        last = start + step >= len(payload)
        offset_flags = ((base + start) // 8) << 3 | (0 if last and not more else 1)
        fragment = _FRAGMENT.pack(protocol, offset_flags, identification)
        header = pack_header(
            traffic_class,
            0,
            FRAGMENT_HEADER_LENGTH + len(chunk),
            IpProtocol.FRAGMENT,
            hop_limit,
            src,
            dst,
        )
        out.append(header + fragment + chunk)
    return tuple(out)


def _transport_4to6(
    protocol: int,
    payload: bytes,
    h: ipv4.IPv4Header,
    src6: bytes,
    dst6: bytes,
    fragmented: bool,
    config: SiitConfig,
) -> bytes | DropReason:
    """TCP/UDP checksum moved from the IPv4 to the IPv6 pseudo-header (RFC 7915 section 4.5).

    Lengths and protocol are the same in both pseudo-headers, so only the addresses change.
    """
    at = CHECKSUM_AT[protocol]
    if len(payload) < at + 2:
        return DropReason.L4_TRUNCATED
    old = int.from_bytes(payload[at : at + 2], "big")
    if protocol == IpProtocol.UDP and old == 0:
        # RFC 7915 4.5: zero-checksum UDP is dropped unless configured to compute one, which is
        # only possible when the whole datagram is here.
        if fragmented or config.udp_zero_checksum is UdpZeroChecksum.DROP:
            return DropReason.UDP_ZERO_CHECKSUM
        pseudo = checksum.pseudo_header_v6(src6, dst6, IpProtocol.UDP, len(payload))
        new = checksum.internet_checksum(payload, pseudo) or 0xFFFF
        return payload[:at] + new.to_bytes(2, "big") + payload[at + 2 :]
    return move_checksum(protocol, payload, h.src + h.dst, src6 + dst6)


def _icmp_4to6(
    payload: bytes, src6: bytes, dst6: bytes, mapper: AddressMapper, config: SiitConfig
) -> bytes | DropReason:
    """An ICMPv4 message rewritten as ICMPv6 (RFC 7915 sections 4.2 and 4.3)."""
    message = icmpv4.parse(payload)
    if isinstance(message, DropReason):
        return message
    echo = icmp_map.ECHO_4TO6.get(message.type)
    if echo is not None:
        return icmpv6.build(
            icmpv6.IcmpV6Message(echo, message.code, message.rest, message.body), src6, dst6
        )
    mapping = icmp_map.ERRORS_4TO6.get((message.type, message.code))
    if mapping is None:
        return DropReason.ICMP_UNTRANSLATABLE

    # RFC 4884: a non-zero length attribute (32-bit words) separates the quoted datagram from
    # extensions, which travel on as opaque octets (RFC 7915 4.2 "ICMP Error Payload").
    words = message.rest[1] if message.type in icmp_map.LENGTH_ATTRIBUTE_V4 else 0
    quoted, extension = rfc4884.split(message.body, words, rfc4884.V4_WORD)
    inner = _inner_4to6(quoted, mapper)
    if isinstance(inner, DropReason):
        return inner

    rest = _rest_4to6(mapping, message.rest, quoted, config)
    if rest is None:
        return DropReason.ICMP_UNTRANSLATABLE
    # RFC 4443 2.4 (c): at most 1280 octets; the quote gives way to the extension (RFC 4884).
    if mapping.type not in icmp_map.LENGTH_ATTRIBUTE_V6:
        extension = b""
    room = IPV6_ERROR_LIMIT - HEADER_LENGTH - icmpv6.HEADER_LENGTH
    body, length = rfc4884.layout(inner, extension, rfc4884.V6_WORD, room)
    if length:
        rest = bytes((length,)) + rest[1:]
    return icmpv6.build(icmpv6.IcmpV6Message(mapping.type, mapping.code, rest, body), src6, dst6)


def _rest_4to6(
    mapping: icmp_map.Mapping, rest: bytes, quoted: bytes, config: SiitConfig
) -> bytes | None:
    """The ICMPv6 rest-of-header for an error, or None when the field cannot be translated."""
    if mapping.rest is Rest.MTU:
        advertised = int.from_bytes(rest[2:4], "big")
        if advertised == 0:
            # RFC 7915 4.2: a router that does not do RFC 1191: guess from the plateau table.
            total = int.from_bytes(quoted[2:4], "big") if len(quoted) >= 4 else 0
            mtu = icmp_map.plateau_mtu(total)
        else:
            mtu = advertised + 20
        # RFC 7915 section 5, first bullet: never below the IPv6 minimum MTU.
        mtu = min(mtu, config.ipv6_mtu, config.ipv4_mtu + 20)
        return icmpv6.mtu_rest(max(mtu, icmpv6.MIN_MTU))
    if mapping.rest is Rest.POINTER:
        pointer = icmp_map.POINTER_4TO6.get(rest[0])
        return None if pointer is None else icmpv6.pointer_rest(pointer)
    if mapping.rest is Rest.NEXT_HEADER:
        return icmpv6.pointer_rest(6)  # offset of Next Header in the IPv6 header
    return bytes(4)


def _inner_4to6(data: bytes, mapper: AddressMapper) -> bytes | DropReason:
    """The IPv4 packet quoted in an ICMPv4 error, as IPv6 (RFC 7915 section 4.3).

    It is translated like a normal packet but keeps its TTL, may be truncated, and travelled the
    other way (so its source is mapped as a destination). A further embedded error is dropped.
    """
    parsed = ipv4.parse(data, verify_checksum=False, allow_truncated=True)
    if isinstance(parsed, DropReason):
        return parsed
    h = parsed.header
    src6 = mapper.destination_4to6(h.src)
    dst6 = mapper.source_4to6(h.dst)
    if src6 is None or dst6 is None:
        return DropReason.ADDRESS_UNMAPPABLE
    payload = parsed.payload
    length = h.total_length - h.header_length
    protocol = h.protocol
    first = h.fragment_offset == 0
    if protocol == IpProtocol.ICMP:
        protocol = IpProtocol.ICMPV6
        if first and payload:
            if payload[0] in icmpv4.ERROR_TYPES:
                return DropReason.ICMP_ERROR_NESTED
            echo = icmp_map.ECHO_4TO6.get(payload[0])
            if echo is None:
                return DropReason.ICMP_UNTRANSLATABLE
            pseudo = checksum.pseudo_header_v6(src6, dst6, IpProtocol.ICMPV6, length)
            payload = retype_icmp(payload, echo, pseudo, 0)
    elif protocol in CHECKSUM_AT and first:
        payload = move_checksum(protocol, payload, h.src + h.dst, src6 + dst6)
    if h.is_fragment:
        offset_flags = h.fragment_offset << 3 | int(h.more_fragments)
        fragment = _FRAGMENT.pack(protocol, offset_flags, h.identification)
        header = pack_header(
            h.tos, 0, length + FRAGMENT_HEADER_LENGTH, IpProtocol.FRAGMENT, h.ttl, src6, dst6
        )
        return header + fragment + payload
    return pack_header(h.tos, 0, length, protocol, h.ttl, src6, dst6) + payload
