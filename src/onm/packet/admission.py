"""What a virtual network carries, and the checks a datagram passes before an agent forwards it.

One place decides, so that a node's datagram meets the same rules whether its destination is on
the same host or across the substrate, and so that the substrate side accepts only what an agent
could have sent (`docs/protocols.md` says it in prose). Every refusal is a `DropReason`.

Theory of operation:
- `check_ipv4` takes an IPv4 datagram from a node (or the one inside an encapsulated packet):
  a well-formed header (RFC 791 3.1: version, IHL, Total Length that is what the frame holds,
  header checksum, well-formed options, a fragment that ends inside 65535 octets), a protocol
  the network carries, and a transport header whose lengths agree with the datagram's.
- `check_ipv6` takes a packet from the substrate: a well-formed fixed header (RFC 8200 section
  3), a Payload Length that is what the frame holds, no extension header an agent never sends
  (SIIT sends at most a Fragment Header, RFC 7915 4.1; encapsulation none), and an upper layer
  the network's encoding carries, checked like the IPv4 one.
- Bytes after the datagram are accepted only where Ethernet pads a short frame (IEEE 802.3: a
  frame is at least 60 octets before the FCS); a longer frame must end where the datagram does.
- Only header fields are read: a super-packet (`onm.packet.offload`) is checked from its
  headers, with `length` its size on the wire.
- TTL and hop limit are the translator's concern (`onm.packet.siit`, `onm.packet.encap`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from onm.packet import ipv6, tcp
from onm.packet.checksum import internet_checksum
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.ipv4 import has_unexpired_source_route

ETHERNET_PADDED: Final = 60 - 14
"""IEEE 802.3 minimum frame (60 octets without FCS) less its 14-octet header: a datagram this
short may arrive with padding behind it (RFC 894, RFC 2464 section 3)."""
MAX_DATAGRAM: Final = 0xFFFF  # RFC 791 section 3.1: Total Length is 16 bits, fragments included


@dataclass(frozen=True, slots=True)
class Carried:
    """What one encoding carries: the protocols of a node's IPv4 datagrams, the upper layers of
    the substrate's IPv6 packets, and whether a Fragment Header may come before them."""

    ipv4: frozenset[int]
    ipv6: frozenset[int]
    fragment_header: bool


# SIIT: what RFC 7915 translates with its integrity intact (sections 4.2-4.5 and 5.2-5.5): ICMP
# and the two transports whose checksums it moves. Others would pass with a pseudo-header
# checksum (DCCP, UDP-Lite) or an authenticated header (AH) that no longer matches, or are no
# upper layer at all; the entry point fragments (RFC 7915 4.1), so a Fragment Header may come.
SIIT: Final = Carried(
    frozenset({IpProtocol.ICMP, IpProtocol.TCP, IpProtocol.UDP}),
    frozenset({IpProtocol.ICMPV6, IpProtocol.TCP, IpProtocol.UDP}),
    fragment_header=True,
)
# Encapsulation (RFC 2473) carries the IPv4 datagram untouched, so any IPv4 protocol: not the
# numbers that mean something only as IPv6 headers (RFC 8200 section 4) nor 255 (IANA
# reserved). The entry point never fragments the IPv6 packet (`onm.packet.encap`).
IPV6_ONLY: Final = frozenset(
    {
        IpProtocol.HOPOPTS,
        IpProtocol.ROUTING,
        IpProtocol.FRAGMENT,
        IpProtocol.ICMPV6,
        IpProtocol.NONXT,
        IpProtocol.DSTOPTS,
    }
)
RESERVED: Final = 255
ENCAP: Final = Carried(
    frozenset(range(256)) - IPV6_ONLY - {RESERVED},
    frozenset({IpProtocol.IPV4}),
    fragment_header=False,
)

# IPv6 extension headers (RFC 8200 section 4 and IANA "IPv6 Extension Header Types"): none but
# SIIT's Fragment Header ever comes from an agent.
EXTENSION_HEADERS: Final = ipv6.EXTENSION_HEADERS | {253, 254}  # + RFC 3692 experimentation

_V4: Final = struct.Struct("!BxHxxHBB")
_V6: Final = struct.Struct("!IHBB")
_FRAGMENT: Final = struct.Struct("!BxH")
_OFFSET_MASK: Final = 0x1FFF
_MORE: Final = 0x2000
# Shortest upper-layer header of each protocol checked here (RFC 9293 3.1, RFC 768, RFC 792,
# RFC 4443 2.1: every ICMP message has 8 octets of header, the ICMPv6 ones in use too).
_ICMP_HEADER: Final = 8
_UDP_HEADER: Final = 8
_TCP_HEADER: Final = tcp.MIN_HEADER_LENGTH
_ICMPS: Final = frozenset({IpProtocol.ICMP, IpProtocol.ICMPV6})
# Plain ints for the per-packet comparisons: an enum member read through its class costs ~60 ns.
_FRAGMENT_HEADER: Final = int(IpProtocol.FRAGMENT)
_TCP: Final = int(IpProtocol.TCP)
_UDP: Final = int(IpProtocol.UDP)


def _trailing_ok(datagram: int, frame: int) -> bool:
    """May `frame` octets hold a datagram of `datagram` octets (the rest Ethernet padding)?"""
    return datagram == frame or (datagram < frame <= ETHERNET_PADDED)


def check_ipv4(
    packet: bytes | memoryview,
    carried: Carried,
    length: int | None = None,
    padded: bool = True,
) -> DropReason | None:
    """Why the IPv4 datagram `packet` may not be forwarded on a network that carries `carried`,
    or None when it may.

    `length`: its size on the wire when `packet` holds only its headers (a super-packet);
    `padded`: it came in an Ethernet frame (False: inside another packet, where nothing pads).
    """
    size = len(packet) if length is None else length
    if len(packet) < 20:
        return DropReason.IPV4_TRUNCATED
    vihl, total, frag, _ttl, protocol = _V4.unpack_from(packet)
    if vihl >> 4 != 4:
        return DropReason.IPV4_BAD_VERSION
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        return DropReason.IPV4_BAD_HEADER_LENGTH
    if len(packet) < ihl:
        return DropReason.IPV4_TRUNCATED
    if total < ihl:
        return DropReason.IPV4_BAD_TOTAL_LENGTH
    if total > size:
        return DropReason.IPV4_TRUNCATED
    if not (_trailing_ok(total, size) if padded else total == size):
        return DropReason.IPV4_BAD_TOTAL_LENGTH
    if internet_checksum(packet[:ihl]) != 0:
        return DropReason.IPV4_BAD_CHECKSUM
    offset = frag & _OFFSET_MASK
    if offset * 8 + total > MAX_DATAGRAM:
        return DropReason.IPV4_BAD_FRAGMENT  # ends past the largest datagram (RFC 791 3.2)
    if ihl > 20:
        options = has_unexpired_source_route(bytes(packet[20:ihl]))
        if isinstance(options, DropReason):
            return options
    if protocol not in carried.ipv4:
        return DropReason.PROTOCOL_NOT_CARRIED
    if offset:
        return None  # data only: the transport header was in the first fragment
    return _check_transport(packet, ihl, protocol, total - ihl, not frag & _MORE)


def check_ipv6(
    packet: bytes | memoryview, carried: Carried, length: int | None = None
) -> DropReason | None:
    """Why the IPv6 packet `packet` from the substrate may not be accepted on a network that
    carries `carried`, or None when it may: `check_ipv6_header`, then `check_ipv6_payload`.

    `length`: its size on the wire when `packet` holds only its headers (a super-packet).
    """
    refused = check_ipv6_header(packet, len(packet) if length is None else length)
    return refused if refused is not None else check_ipv6_payload(packet, carried)


def check_ipv6_header(packet: bytes | memoryview, size: int) -> DropReason | None:
    """The fixed header of a `size`-octet packet (RFC 8200 section 3): before anything in it,
    its addresses included, is believed."""
    if len(packet) < 40:
        return DropReason.IPV6_TRUNCATED
    vtf, payload_length, _next_header, _hop_limit = _V6.unpack_from(packet)
    if vtf >> 28 != 6:
        return DropReason.IPV6_BAD_VERSION
    end = 40 + payload_length
    if end > size:
        return DropReason.IPV6_TRUNCATED
    if not _trailing_ok(end, size):
        return DropReason.IPV6_BAD_PAYLOAD_LENGTH  # a jumbogram (RFC 2675) included
    return None


def check_ipv6_payload(packet: bytes | memoryview, carried: Carried) -> DropReason | None:
    """What follows the fixed header that `check_ipv6_header` accepted: no extension header
    but a Fragment Header where the encoding has them, then an upper layer it carries."""
    _vtf, payload_length, next_header, _hop_limit = _V6.unpack_from(packet)
    end = 40 + payload_length
    at = 40
    whole = True
    if next_header == _FRAGMENT_HEADER and carried.fragment_header:
        if len(packet) < at + 8 or end < at + 8:
            return DropReason.IPV6_TRUNCATED
        next_header, offset_flags = _FRAGMENT.unpack_from(packet, at)
        at += 8
        if next_header in EXTENSION_HEADERS:
            return DropReason.IPV6_EXTENSION_NOT_CARRIED
        if next_header not in carried.ipv6:
            return DropReason.PROTOCOL_NOT_CARRIED
        if offset_flags >> 3:
            return None  # a later fragment: data only
        whole = not offset_flags & 1
    elif next_header in EXTENSION_HEADERS:
        return DropReason.IPV6_EXTENSION_NOT_CARRIED
    elif next_header not in carried.ipv6:
        return DropReason.PROTOCOL_NOT_CARRIED
    return _check_transport(packet, at, next_header, end - at, whole)


def _check_transport(
    packet: bytes | memoryview, at: int, protocol: int, length: int, whole: bool
) -> DropReason | None:
    """The upper-layer header at `at`, `length` octets of it in this datagram (fragment): its
    own lengths must agree with that (all of it when `whole`). Other protocols pass as data."""
    if protocol == _TCP:
        # RFC 9293 3.1: Data Offset counts 32-bit words, at least 5; the header is all here
        # (a first fragment too, RFC 1858 section 3).
        if length < _TCP_HEADER or len(packet) < at + _TCP_HEADER:
            return DropReason.L4_TRUNCATED
        header = (packet[at + 12] >> 4) * 4
        if header < _TCP_HEADER or header > length:
            return DropReason.L4_TRUNCATED
    elif protocol == _UDP:
        if length < _UDP_HEADER or len(packet) < at + _UDP_HEADER:
            return DropReason.L4_TRUNCATED
        udp_length = int.from_bytes(packet[at + 4 : at + 6], "big")
        # RFC 768: Length is the datagram's, header included; a first fragment holds part.
        agrees = udp_length == length if whole else length <= udp_length
        if not agrees:
            return DropReason.UDP_BAD_LENGTH
    elif protocol in _ICMPS and whole and length < _ICMP_HEADER:
        return DropReason.ICMP_TRUNCATED
    return None
