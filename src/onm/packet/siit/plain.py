"""Plain TCP and UDP datagrams the short way: what `translate_4to6` / `translate_6to4` give, fast.

Nearly everything a translator sees is a TCP segment or UDP datagram with no IPv4 options, no
extension header, no fragment, that fits the next hop. For those, RFC 7915 comes down to a new
IP header (sections 4.1 and 5.1) and the transport checksum moved to the new pseudo-header
(sections 4.5 and 5.5, the same `move_checksum` the full translator uses). `plain_4to6` and
`plain_6to4` do only that, without building the parsed headers and results the general path
needs, and answer None for every other packet (options, fragments, ICMP, a zero UDP checksum
from IPv4, a bad IPv4 header checksum, an illegal or unmappable address, an expiring or zero
TTL, a packet over the MTU): the caller then hands it to the full translator, which decides. The
tests feed both the same packets and require identical bytes wherever the short way answers.

`plain_super_4to6` and `plain_super_6to4` do the same for the headers of a TCP super-packet
(`onm.packet.offload`): what the general way makes of it (its first segment translated, then
`super_headers`), straight from its headers; the payload is not even needed.
"""

from __future__ import annotations

import struct

from onm.packet.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6
from onm.packet.ipproto import IpProtocol
from onm.packet.mapper import AddressMapper
from onm.packet.siit.generate import is_unicast_v4
from onm.packet.siit.result import SiitConfig
from onm.packet.siit.six_to_four import DF_THRESHOLD
from onm.packet.siit.transport import CHECKSUM_AT, move_checksum

_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")
_PLAIN_V4 = 0x45  # version 4, a 20-octet header: no options
_DF = 0x4000
_FRAGMENT = 0x3FFF  # More Fragments and the offset: both zero in a whole datagram


def plain_4to6(packet: bytes, mapper: AddressMapper, config: SiitConfig) -> bytes | None:
    """The IPv6 packet `translate_4to6` makes of a plain TCP/UDP `packet`; None if not plain."""
    if len(packet) < 20:
        return None
    vihl, tos, total, _, frag, ttl, protocol, _, src, dst = _V4.unpack_from(packet)
    at = CHECKSUM_AT.get(protocol)
    if vihl != _PLAIN_V4 or frag & _FRAGMENT or at is None or not 22 + at <= total <= len(packet):
        return None
    if internet_checksum(packet[:20]) != 0 or not is_unicast_v4(src):
        return None
    if ttl == 0 or (config.decrement_ttl and ttl == 1):
        return None
    if config.decrement_ttl:
        ttl -= 1
    limit = config.ipv6_mtu
    if not frag & _DF:
        limit = min(limit, config.lowest_ipv6_mtu)
    if 20 + total > limit or (protocol == IpProtocol.UDP and packet[26:28] == b"\0\0"):
        return None
    src6 = mapper.source_4to6(src)
    dst6 = mapper.destination_4to6(dst)
    if src6 is None or dst6 is None:
        return None
    payload = move_checksum(protocol, packet[20:total], src + dst, src6 + dst6)
    traffic_class = tos if config.copy_tos else 0
    header = _V6.pack(0x60000000 | traffic_class << 20, total - 20, protocol, ttl, src6, dst6)
    return header + payload


def plain_6to4(
    packet: bytes, mapper: AddressMapper, config: SiitConfig, identification: int = 0
) -> bytes | None:
    """The IPv4 datagram `translate_6to4` makes of a plain TCP/UDP `packet`; None if not plain."""
    if len(packet) < 40:
        return None
    vtf, length, protocol, hop_limit, src, dst = _V6.unpack_from(packet)
    at = CHECKSUM_AT.get(protocol)
    if vtf >> 28 != 6 or at is None or length < at + 2 or 40 + length > len(packet):
        return None
    if hop_limit == 0 or (config.decrement_ttl and hop_limit == 1):
        return None
    if config.decrement_ttl:
        hop_limit -= 1
    total = 20 + length
    if total > config.ipv4_mtu:
        return None
    dst4 = mapper.destination_6to4(dst)
    src4 = mapper.source_6to4(src)
    if src4 is None or dst4 is None:
        return None
    payload = move_checksum(protocol, packet[40 : 40 + length], src + dst, src4 + dst4)
    tos = (vtf >> 20) & 0xFF if config.copy_tos else 0
    flags = _DF if total > DF_THRESHOLD else 0
    header = bytearray(
        _V4.pack(
            _PLAIN_V4,
            tos,
            total,
            identification & 0xFFFF,
            flags,
            hop_limit,
            protocol,
            0,
            src4,
            dst4,
        )
    )
    struct.pack_into("!H", header, 10, internet_checksum(header))
    return bytes(header) + payload


def plain_super_4to6(
    headers: bytes, payload_length: int, size: int, mapper: AddressMapper, config: SiitConfig
) -> bytes | None:
    """IPv6 and TCP headers for a plain TCP super-packet: `offload.super_headers` of
    `translate_4to6` of its first `size`-octet segment, or None where that is not plain.

    `headers` are its IPv4 and TCP headers, `payload_length` its TCP payload's length; the new
    TCP checksum field holds the IPv6 pseudo-header's sum (CHECKSUM_PARTIAL).
    """
    if len(headers) < 40 or size <= 0:
        return None
    vihl, tos, _, _, frag, ttl, protocol, _, src, dst = _V4.unpack_from(headers)
    thl = (headers[32] >> 4) * 4
    if vihl != _PLAIN_V4 or frag & _FRAGMENT or protocol != IpProtocol.TCP:
        return None
    if thl < 20 or len(headers) != 20 + thl or not is_unicast_v4(src):
        return None
    if ttl == 0 or (config.decrement_ttl and ttl == 1):
        return None
    if config.decrement_ttl:
        ttl -= 1
    limit = config.ipv6_mtu
    if not frag & _DF:
        limit = min(limit, config.lowest_ipv6_mtu)
    length = thl + payload_length
    if 40 + thl + min(size, payload_length) > limit or length > 0xFFFF:
        return None
    src6 = mapper.source_4to6(src)
    dst6 = mapper.destination_4to6(dst)
    if src6 is None or dst6 is None:
        return None
    tcp = bytearray(headers[20:])
    struct.pack_into("!H", tcp, 16, pseudo_header_v6(src6, dst6, IpProtocol.TCP, length))
    traffic_class = tos if config.copy_tos else 0
    vtf = 0x60000000 | traffic_class << 20
    return _V6.pack(vtf, length, IpProtocol.TCP, ttl, src6, dst6) + tcp


def plain_super_6to4(
    headers: bytes,
    payload_length: int,
    size: int,
    mapper: AddressMapper,
    config: SiitConfig,
    identification: int = 0,
) -> bytes | None:
    """IPv4 and TCP headers for a plain TCP super-packet: `offload.super_headers` of
    `translate_6to4` of its first `size`-octet segment, or None where that is not plain (or
    the segment would not fit the IPv4 side, or the whole not fit one IPv4 datagram)."""
    if len(headers) < 60 or size <= 0:
        return None
    vtf, _, protocol, hop_limit, src, dst = _V6.unpack_from(headers)
    thl = (headers[52] >> 4) * 4
    if vtf >> 28 != 6 or protocol != IpProtocol.TCP or thl < 20 or len(headers) != 40 + thl:
        return None
    if hop_limit == 0 or (config.decrement_ttl and hop_limit == 1):
        return None
    if config.decrement_ttl:
        hop_limit -= 1
    segment = 20 + thl + min(size, payload_length)
    total = 20 + thl + payload_length
    if segment > config.ipv4_mtu or total > 0xFFFF:
        return None
    dst4 = mapper.destination_6to4(dst)
    src4 = mapper.source_6to4(src)
    if src4 is None or dst4 is None:
        return None
    tos = (vtf >> 20) & 0xFF if config.copy_tos else 0
    flags = _DF if segment > DF_THRESHOLD else 0  # as the segment's translation decides
    ident = identification & 0xFFFF
    header = bytearray(
        _V4.pack(_PLAIN_V4, tos, total, ident, flags, hop_limit, protocol, 0, src4, dst4)
    )
    struct.pack_into("!H", header, 10, internet_checksum(header))
    tcp = bytearray(headers[40:])
    struct.pack_into("!H", tcp, 16, pseudo_header_v4(src4, dst4, IpProtocol.TCP, total - 20))
    return bytes(header) + tcp
