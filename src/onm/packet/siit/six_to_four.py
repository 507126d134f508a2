"""IPv6 -> IPv4 translation (RFC 7915 section 5).

Theory of operation: the IPv6 header and its extension headers are replaced by an option-less
IPv4 header; only the Fragment Header's information survives (Identification, More Fragments,
offset). TCP and UDP checksums are updated incrementally for the pseudo-header change; ICMPv6 is
rewritten as ICMPv4, including the packet quoted inside errors. IPv6 routers never fragment, so
an unfragmented packet too big for the IPv4 side gets Packet Too Big; a packet that arrived as a
fragment may be fragmented further in IPv4 (DF clear).
"""

from __future__ import annotations

from onm.packet import checksum, icmpv4, icmpv6, ipv4, ipv6, rfc4884
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.mapper import AddressMapper
from onm.packet.siit import icmp_map
from onm.packet.siit.generate import IPV4_ERROR_LIMIT, icmpv6_error
from onm.packet.siit.icmp_map import Rest
from onm.packet.siit.result import Drop, Result, SiitConfig, Translated
from onm.packet.siit.transport import CHECKSUM_AT, move_checksum, retype_icmp

DEFAULT_CONFIG = SiitConfig()
DF_THRESHOLD = 1260  # RFC 7915 5.1: larger unfragmented results get DF set
MAX_DATA = 0xFFFF - ipv4.MIN_HEADER_LENGTH  # the most an IPv4 datagram (or its reassembly) holds

# RFC 7915 5.1.1: after a Fragment Header these (AH included, ESP not) mean "SHOULD be dropped".
_EXTENSION_HEADERS = ipv6.EXTENSION_HEADERS


def translate_6to4(
    packet: bytes,
    mapper: AddressMapper,
    config: SiitConfig = DEFAULT_CONFIG,
    identification: int = 0,
) -> Result:
    """Translate one IPv6 datagram to IPv4 (one packet, or several IPv4 fragments).

    `identification` is the IPv4 Identification for a packet without a Fragment Header (RFC
    7915 5.1: "set according to a Fragment Identification generator at the translator"); the
    caller owns that generator so this function stays pure.
    """
    parsed = ipv6.parse(packet)
    if isinstance(parsed, DropReason):
        return Drop(parsed)
    h = parsed.header
    upper = ipv6.find_upper_layer(h.next_header, parsed.payload)
    if isinstance(upper, DropReason):
        return Drop(upper)
    fragment = upper.fragment
    payload = parsed.payload[upper.offset :]
    if fragment is not None and fragment.offset * 8 + len(payload) > MAX_DATA:
        # RFC 8200 4.5: past 65535 octets; the IPv4 13-bit offset would wrap besides.
        return Drop(DropReason.IPV6_BAD_FRAGMENT)
    original = packet[: ipv6.HEADER_LENGTH + h.payload_length]
    first = fragment is None or fragment.offset == 0
    is_icmp_error = (
        upper.protocol == IpProtocol.ICMPV6 and first and bool(payload) and payload[0] < 128
    )

    def error(message: tuple[int, int, bytes], reason: DropReason) -> Result:
        return icmpv6_error(
            original, h.src, h.dst, is_icmp_error, not first, message, config, reason
        )

    # RFC 7915 5.1.1: an extension header after the Fragment Header SHOULD be dropped and logged
    # (not "silently"): 5.4's default error, 1/1, applies.
    if fragment is not None and fragment.next_header in _EXTENSION_HEADERS:
        prohibited = (
            icmpv6.IcmpV6Type.DEST_UNREACHABLE,
            icmpv6.Unreachable.ADMIN_PROHIBITED,
            bytes(4),
        )
        return error(prohibited, DropReason.IPV6_BAD_EXTENSION_HEADER)
    # RFC 7915 5.1: a Routing Header with Segments Left non-zero MUST NOT be translated;
    # Parameter Problem code 0 points at the Segments Left field.
    if upper.segments_left_at is not None:
        pointer = icmpv6.pointer_rest(ipv6.HEADER_LENGTH + upper.segments_left_at)
        problem = (icmpv6.IcmpV6Type.PARAMETER_PROBLEM, 0, pointer)
        return error(problem, DropReason.IPV6_ROUTING_HEADER)
    hop_limit = h.hop_limit
    # Decrementing or not, no IPv4 datagram leaves with TTL 0 (RFC 1812 4.2.2.9).
    if hop_limit == 0 or (config.decrement_ttl and hop_limit == 1):
        return error((icmpv6.IcmpV6Type.TIME_EXCEEDED, 0, bytes(4)), DropReason.TTL_EXPIRED)
    if config.decrement_ttl:
        hop_limit -= 1

    dst4 = mapper.destination_6to4(h.dst)
    if dst4 is None:
        return Drop(DropReason.ADDRESS_UNMAPPABLE)
    src4 = mapper.source_6to4(h.src)
    if src4 is None and is_icmp_error:
        src4 = config.icmp_error_pool_v4  # RFC 6791
    if src4 is None:
        # RFC 7915 5.1 Source Address: SHOULD answer "source address failed ingress/egress
        # policy"; `icmpv6_error` keeps illegal sources (::1, multicast...) silent.
        policy = (icmpv6.IcmpV6Type.DEST_UNREACHABLE, icmpv6.Unreachable.SOURCE_POLICY, bytes(4))
        return error(policy, DropReason.ADDRESS_UNMAPPABLE)

    fragmented = fragment is not None and (fragment.more or fragment.offset != 0)
    protocol = upper.protocol
    if protocol == IpProtocol.ICMPV6:
        if fragmented:
            return Drop(DropReason.ICMP_FRAGMENTED)
        icmp = _icmp_6to4(payload, h.src, h.dst, mapper, config)
        if isinstance(icmp, DropReason):
            return Drop(icmp)
        payload = icmp
        protocol = IpProtocol.ICMP
    elif protocol in CHECKSUM_AT and first:
        if len(payload) < CHECKSUM_AT[protocol] + 2:
            return Drop(DropReason.L4_TRUNCATED)
        payload = move_checksum(protocol, payload, h.src + h.dst, src4 + dst4)

    total = ipv4.MIN_HEADER_LENGTH + len(payload)
    if fragment is not None:
        # RFC 7915 5.1.1: Identification from the Fragment Header, DF clear, MF and offset copied.
        ident, df, more, offset = (
            fragment.identification & 0xFFFF,
            False,
            fragment.more,
            fragment.offset,
        )
    else:
        ident, df, more, offset = identification & 0xFFFF, total > DF_THRESHOLD, False, 0
    header = ipv4.IPv4Header(
        src4,
        dst4,
        protocol,
        hop_limit,
        h.traffic_class if config.copy_tos else 0,
        ident,
        df,
        more,
        offset,
    )
    if total <= config.ipv4_mtu:
        return Translated((ipv4.build(header, payload),))
    if df:
        # RFC 7915 section 5: the IPv6 sender must learn the path MTU; its packets shrink by 20.
        mtu = config.ipv4_mtu + ipv6.HEADER_LENGTH - ipv4.MIN_HEADER_LENGTH
        too_big = (icmpv6.IcmpV6Type.PACKET_TOO_BIG, 0, icmpv6.mtu_rest(max(mtu, icmpv6.MIN_MTU)))
        return error(too_big, DropReason.PACKET_TOO_BIG)
    return Translated(ipv4.fragment(header, payload, config.ipv4_mtu))


def _icmp_6to4(
    payload: bytes, src6: bytes, dst6: bytes, mapper: AddressMapper, config: SiitConfig
) -> bytes | DropReason:
    """An ICMPv6 message rewritten as ICMPv4 (RFC 7915 sections 5.2 and 5.3)."""
    message = icmpv6.parse(payload, src6, dst6)
    if isinstance(message, DropReason):
        return message
    echo = icmp_map.ECHO_6TO4.get(message.type)
    if echo is not None:
        return icmpv4.build(icmpv4.IcmpV4Message(echo, message.code, message.rest, message.body))
    mapping = icmp_map.ERRORS_6TO4.get((message.type, message.code))
    if mapping is None:
        return DropReason.ICMP_UNTRANSLATABLE

    # RFC 4884: a non-zero length attribute (64-bit words) separates quoted datagram and extension.
    words = message.rest[0] if message.type in icmp_map.LENGTH_ATTRIBUTE_V6 else 0
    quoted, extension = rfc4884.split(message.body, words, rfc4884.V6_WORD)
    inner = _inner_6to4(quoted, mapper)
    if isinstance(inner, DropReason):
        return inner
    rest = _rest_6to4(mapping, message.rest, quoted, config)
    if rest is None:
        return DropReason.ICMP_UNTRANSLATABLE
    # The translator is a router (RFC 7915 1.4): the ICMPv4 error it sends fits in 576 octets
    # (RFC 1812 4.3.2.3), the quote giving way to the extension (RFC 4884 section 4).
    if mapping.type not in icmp_map.LENGTH_ATTRIBUTE_V4:
        extension = b""
    room = IPV4_ERROR_LIMIT - ipv4.MIN_HEADER_LENGTH - icmpv4.HEADER_LENGTH
    body, length = rfc4884.layout(inner, extension, rfc4884.V4_WORD, room)
    if length:
        rest = rest[:1] + bytes((length,)) + rest[2:]
    return icmpv4.build(icmpv4.IcmpV4Message(mapping.type, mapping.code, rest, body))


def _rest_6to4(
    mapping: icmp_map.Mapping, rest: bytes, quoted: bytes, config: SiitConfig
) -> bytes | None:
    """The ICMPv4 rest-of-header for an error, or None when the field cannot be translated."""
    if mapping.rest is Rest.MTU:
        # RFC 7915 5.2: min(advertised - 20, IPv4 next hop, IPv6 next hop - 20), and 8 less when
        # the quoted packet carried a Fragment Header the IPv4 sender never sent.
        fragment_header = len(quoted) > 6 and quoted[6] == IpProtocol.FRAGMENT
        advertised = int.from_bytes(rest, "big") - 20 - (8 if fragment_header else 0)
        mtu = min(advertised, config.ipv4_mtu, config.ipv6_mtu - 20)
        return icmpv4.mtu_rest(max(0, min(mtu, 0xFFFF)))
    if mapping.rest is Rest.POINTER:
        pointer = icmp_map.POINTER_6TO4.get(int.from_bytes(rest, "big"))
        return None if pointer is None else icmpv4.pointer_rest(pointer)
    return bytes(4)


def _inner_6to4(data: bytes, mapper: AddressMapper) -> bytes | DropReason:
    """The IPv6 packet quoted in an ICMPv6 error, as IPv4 (RFC 7915 section 5.3)."""
    parsed = ipv6.parse(data, allow_truncated=True)
    if isinstance(parsed, DropReason):
        return parsed
    h = parsed.header
    upper = ipv6.find_upper_layer(h.next_header, parsed.payload)
    if isinstance(upper, DropReason):
        return upper
    src4 = mapper.destination_6to4(h.src)
    dst4 = mapper.source_6to4(h.dst)
    if src4 is None or dst4 is None:
        return DropReason.ADDRESS_UNMAPPABLE
    payload = parsed.payload[upper.offset :]
    length = h.payload_length - upper.offset
    if length > MAX_DATA:
        return DropReason.IPV6_BAD_PAYLOAD_LENGTH  # no IPv4 Total Length says that much
    fragment = upper.fragment
    first = fragment is None or fragment.offset == 0
    protocol = upper.protocol
    if protocol == IpProtocol.ICMPV6:
        protocol = IpProtocol.ICMP
        if first and payload:
            if payload[0] < 128:
                return DropReason.ICMP_ERROR_NESTED
            echo = icmp_map.ECHO_6TO4.get(payload[0])
            if echo is None:
                return DropReason.ICMP_UNTRANSLATABLE
            pseudo = checksum.pseudo_header_v6(h.src, h.dst, IpProtocol.ICMPV6, length)
            payload = retype_icmp(payload, echo, 0, pseudo)
    elif protocol in CHECKSUM_AT and first:
        payload = move_checksum(protocol, payload, h.src + h.dst, src4 + dst4)
    header = ipv4.IPv4Header(
        src4,
        dst4,
        protocol,
        h.hop_limit,
        h.traffic_class,
        fragment.identification & 0xFFFF if fragment else 0,
        fragment is None and ipv4.MIN_HEADER_LENGTH + length > DF_THRESHOLD,  # as in 5.1
        fragment.more if fragment else False,
        fragment.offset if fragment else 0,
    )
    return ipv4.build_header(header, length) + payload
