"""ICMP errors the translator itself sends back to a sender whose packet it discards.

The translator is a router (RFC 7915 section 1.4), so the usual rules for router-made errors
apply: never about an ICMP error, a non-first fragment, or a packet to or from a group or
unspecified address (RFC 1812 section 4.3.2.7, RFC 4443 section 2.4 (e)); quote as much of the
packet as fits in 576 octets for IPv4 (RFC 1812 4.3.2.3) and 1280 for IPv6 (RFC 4443 2.4 (c)).
Without a configured source address the translator sends none and only drops.
"""

from __future__ import annotations

from onm.packet import icmpv4, icmpv6, ipv4
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.ipv6 import pack_header
from onm.packet.siit.result import Drop, IcmpError, SiitConfig

IPV4_ERROR_LIMIT = 576  # RFC 1812 section 4.3.2.3
IPV6_ERROR_LIMIT = 1280  # RFC 4443 section 2.4 (c)
ERROR_HOP_LIMIT = 64
_UNSPECIFIED_OR_LOOPBACK_V6 = (bytes(16), bytes(15) + b"\x01")


def is_unicast_v4(address: bytes) -> bool:
    """Not 0.0.0.0/8, loopback, multicast, reserved or limited broadcast (RFC 1812 5.3.7)."""
    first = address[0]
    return first != 0 and first != 127 and first < 224


def is_unicast_v6(address: bytes) -> bool:
    """Not the unspecified address, loopback or multicast (RFC 4291 sections 2.4, 2.5.3)."""
    return address[0] != 0xFF and address not in _UNSPECIFIED_OR_LOOPBACK_V6


def icmpv4_error(
    original: bytes,
    header: ipv4.IPv4Header,
    is_icmp_error: bool,
    message: tuple[int, int, bytes],
    config: SiitConfig,
    reason: DropReason,
) -> IcmpError | Drop:
    """An ICMPv4 (type, code, rest) about `original`, from the translator to its sender."""
    source = config.icmp_source_v4
    if (
        source is None
        or is_icmp_error
        or header.fragment_offset != 0
        or not is_unicast_v4(header.src)
        or not is_unicast_v4(header.dst)
    ):
        return Drop(reason)
    icmp_type, code, rest = message
    body = original[: IPV4_ERROR_LIMIT - ipv4.MIN_HEADER_LENGTH - icmpv4.HEADER_LENGTH]
    payload = icmpv4.build(icmpv4.IcmpV4Message(icmp_type, code, rest, body))
    reply = ipv4.IPv4Header(source, header.src, IpProtocol.ICMP, ttl=ERROR_HOP_LIMIT)
    return IcmpError(ipv4.build(reply, payload), reason)


def icmpv6_error(
    original: bytes,
    src: bytes,
    dst: bytes,
    is_icmp_error: bool,
    non_first_fragment: bool,
    message: tuple[int, int, bytes],
    config: SiitConfig,
    reason: DropReason,
) -> IcmpError | Drop:
    """An ICMPv6 (type, code, rest) about `original` (from `src` to `dst`), back to `src`."""
    source = config.icmp_source_v6
    if (
        source is None
        or is_icmp_error
        or non_first_fragment
        or not is_unicast_v6(src)
        or not is_unicast_v6(dst)
    ):
        return Drop(reason)
    icmp_type, code, rest = message
    body = original[: IPV6_ERROR_LIMIT - 40 - icmpv6.HEADER_LENGTH]
    payload = icmpv6.build(icmpv6.IcmpV6Message(icmp_type, code, rest, body), source, src)
    header = pack_header(0, 0, len(payload), IpProtocol.ICMPV6, ERROR_HOP_LIMIT, source, src)
    return IcmpError(header + payload, reason)
