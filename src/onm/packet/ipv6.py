"""IPv6 headers (RFC 8200) and the walk over extension headers to the upper layer.

Only the Fragment Header is ever built or translated; the others are skipped by their length
(RFC 8200 section 4) so that the upper-layer protocol and the fragment fields can be found.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

HEADER_LENGTH = 40
FRAGMENT_HEADER_LENGTH = 8

_HEADER = struct.Struct("!IHBB16s16s")
_FRAGMENT = struct.Struct("!BxHI")

# Extension headers skipped by "(Hdr Ext Len + 1) * 8" octets (RFC 8200 section 4.3-4.6,
# RFC 6275, RFC 7401, RFC 5533); AH counts in 4-octet units (RFC 4302 section 2.2).
_GENERIC_EXTENSIONS = frozenset(
    {
        IpProtocol.HOPOPTS,
        IpProtocol.ROUTING,
        IpProtocol.DSTOPTS,
        IpProtocol.MOBILITY,
        IpProtocol.HIP,
        IpProtocol.SHIM6,
    }
)
EXTENSION_HEADERS = _GENERIC_EXTENSIONS | {IpProtocol.FRAGMENT, IpProtocol.AH}
"""Every IPv6 extension header this walk knows (RFC 8200 section 4, RFC 4302, RFC 6275,
RFC 7401, RFC 5533): what may stand between the fixed header and the upper layer."""


@dataclass(frozen=True, slots=True)
class IPv6Header:
    src: bytes
    dst: bytes
    next_header: int
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    payload_length: int = 0


@dataclass(frozen=True, slots=True)
class IPv6Packet:
    """A datagram: fixed header and everything after it (extension headers included)."""

    header: IPv6Header
    payload: bytes


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    """RFC 8200 section 4.5. `offset` is in 8-octet units, as on the wire."""

    next_header: int
    offset: int
    more: bool
    identification: int


@dataclass(frozen=True, slots=True)
class UpperLayer:
    """Where the upper-layer header starts in an IPv6 payload, and what was passed on the way.

    `fragment_at` is the payload offset of the Fragment Header, if any; `segments_left_at` the
    payload offset of a Routing Header's non-zero Segments Left field, if any (RFC 7915 section
    5.1 refuses those).
    """

    protocol: int
    offset: int
    fragment: FragmentHeader | None = None
    fragment_at: int | None = None
    segments_left_at: int | None = None


def parse(data: bytes, allow_truncated: bool = False) -> IPv6Packet | DropReason:
    """Parse a datagram; bytes after Payload Length are discarded.

    `allow_truncated` accepts a datagram shorter than its Payload Length, as quoted inside
    ICMPv6 errors (RFC 4443 section 2.4 (c)); the payload is then what is there.
    """
    if len(data) < HEADER_LENGTH:
        return DropReason.IPV6_TRUNCATED
    vtf, plen, nh, hlim, src, dst = _HEADER.unpack_from(data)
    if vtf >> 28 != 6:
        return DropReason.IPV6_BAD_VERSION
    if HEADER_LENGTH + plen > len(data) and not allow_truncated:
        return DropReason.IPV6_TRUNCATED
    header = IPv6Header(src, dst, nh, hlim, (vtf >> 20) & 0xFF, vtf & 0xFFFFF, plen)
    return IPv6Packet(header, data[HEADER_LENGTH : HEADER_LENGTH + plen])


def pack_header(
    traffic_class: int,
    flow_label: int,
    payload_length: int,
    next_header: int,
    hop_limit: int,
    src: bytes,
    dst: bytes,
) -> bytes:
    """The fixed header from its fields: the per-packet path that builds no dataclass."""
    vtf = (6 << 28) | ((traffic_class & 0xFF) << 20) | (flow_label & 0xFFFFF)
    return _HEADER.pack(vtf, payload_length, next_header, hop_limit, src, dst)


def build_header(header: IPv6Header, payload_length: int) -> bytes:
    """The fixed header for a payload of `payload_length` (Payload Length recomputed)."""
    return pack_header(
        header.traffic_class,
        header.flow_label,
        payload_length,
        header.next_header,
        header.hop_limit,
        header.src,
        header.dst,
    )


def build(header: IPv6Header, payload: bytes) -> bytes:
    return build_header(header, len(payload)) + payload


def parse_fragment_header(data: bytes, offset: int = 0) -> FragmentHeader | DropReason:
    if len(data) < offset + FRAGMENT_HEADER_LENGTH:
        return DropReason.IPV6_TRUNCATED
    nh, off_flags, ident = _FRAGMENT.unpack_from(data, offset)
    return FragmentHeader(nh, off_flags >> 3, bool(off_flags & 1), ident)


def build_fragment_header(fragment: FragmentHeader) -> bytes:
    return _FRAGMENT.pack(
        fragment.next_header,
        ((fragment.offset & 0x1FFF) << 3) | int(fragment.more),
        fragment.identification,
    )


def find_upper_layer(next_header: int, payload: bytes) -> UpperLayer | DropReason:
    """Skip extension headers to the upper-layer protocol (RFC 8200 section 4.1 order not enforced).

    A non-first fragment stops the walk at the Fragment Header: what follows is data.
    """
    offset = 0
    fragment: FragmentHeader | None = None
    fragment_at: int | None = None
    segments_left_at: int | None = None
    n = len(payload)
    while True:
        if next_header == IpProtocol.FRAGMENT:
            if fragment is not None:
                return DropReason.IPV6_BAD_EXTENSION_HEADER
            parsed = parse_fragment_header(payload, offset)
            if isinstance(parsed, DropReason):
                return parsed
            fragment, fragment_at = parsed, offset
            offset += FRAGMENT_HEADER_LENGTH
            next_header = parsed.next_header
            if parsed.offset != 0:
                break
        elif next_header in _GENERIC_EXTENSIONS or next_header == IpProtocol.AH:
            if offset + 2 > n:
                return DropReason.IPV6_TRUNCATED
            ext_len = payload[offset + 1]
            if next_header == IpProtocol.AH:
                length = (ext_len + 2) * 4
            else:
                length = (ext_len + 1) * 8
            if offset + length > n:
                return DropReason.IPV6_TRUNCATED
            if next_header == IpProtocol.ROUTING and payload[offset + 3] != 0:
                segments_left_at = offset + 3
            next_header = payload[offset]
            offset += length
        else:
            break
    return UpperLayer(next_header, offset, fragment, fragment_at, segments_left_at)
