"""UDP (RFC 768): header codec and checksums over the IPv4 or IPv6 pseudo-header."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from onm.packet.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

HEADER_LENGTH = 8
CHECKSUM_OFFSET = 6

_HEADER = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class UdpHeader:
    src_port: int
    dst_port: int
    length: int = 0
    checksum: int = 0


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    header: UdpHeader
    payload: bytes


def parse(data: bytes) -> UdpDatagram | DropReason:
    """Parse a datagram; the Length field bounds the payload (RFC 768)."""
    if len(data) < HEADER_LENGTH:
        return DropReason.L4_TRUNCATED
    sport, dport, length, csum = _HEADER.unpack_from(data)
    if length < HEADER_LENGTH or length > len(data):
        return DropReason.L4_TRUNCATED
    return UdpDatagram(UdpHeader(sport, dport, length, csum), data[HEADER_LENGTH:length])


def _finish(value: int) -> int:
    # RFC 768: a computed checksum of zero is transmitted as all ones; zero means "none".
    return value or 0xFFFF


def checksum_v4(src: bytes, dst: bytes, segment: bytes) -> int:
    """The checksum field for `segment` (its own checksum field must be zero)."""
    pseudo = pseudo_header_v4(src, dst, IpProtocol.UDP, len(segment))
    return _finish(internet_checksum(segment, pseudo))


def checksum_v6(src: bytes, dst: bytes, segment: bytes) -> int:
    """RFC 8200 section 8.1: mandatory over IPv6."""
    pseudo = pseudo_header_v6(src, dst, IpProtocol.UDP, len(segment))
    return _finish(internet_checksum(segment, pseudo))


def build(datagram: UdpDatagram, src: bytes, dst: bytes, with_checksum: bool = True) -> bytes:
    """Wire bytes; the family of the pseudo-header follows the address length."""
    length = HEADER_LENGTH + len(datagram.payload)
    raw = bytearray(_HEADER.pack(datagram.header.src_port, datagram.header.dst_port, length, 0))
    raw += datagram.payload
    if with_checksum:
        compute = checksum_v4 if len(src) == 4 else checksum_v6
        struct.pack_into("!H", raw, CHECKSUM_OFFSET, compute(src, dst, bytes(raw)))
    return bytes(raw)
