"""TCP (RFC 9293 section 3.1): header codec and checksum over either pseudo-header."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from onm.errors import InvalidInputError
from onm.packet.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

MIN_HEADER_LENGTH = 20
MAX_OPTIONS_LENGTH = 40
CHECKSUM_OFFSET = 16

_HEADER = struct.Struct("!HHIIBBHHH")


class TcpFlag(enum.IntFlag):
    """Control bits (RFC 9293 section 3.1; CWR/ECE from RFC 3168; AE from RFC 9768).

    `TcpHeader.flags` holds all 12 bits after Data Offset, reserved ones included, so that a
    parse/build round trip never changes a segment.
    """

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80
    AE = 0x100


@dataclass(frozen=True, slots=True)
class TcpHeader:
    src_port: int
    dst_port: int
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 65535
    urgent: int = 0
    options: bytes = b""
    checksum: int = 0

    @property
    def header_length(self) -> int:
        return MIN_HEADER_LENGTH + len(self.options)


@dataclass(frozen=True, slots=True)
class TcpSegment:
    header: TcpHeader
    payload: bytes


def parse(data: bytes) -> TcpSegment | DropReason:
    if len(data) < MIN_HEADER_LENGTH:
        return DropReason.L4_TRUNCATED
    sport, dport, seq, ack, offset, flags, window, csum, urg = _HEADER.unpack_from(data)
    hlen = (offset >> 4) * 4
    if hlen < MIN_HEADER_LENGTH or hlen > len(data):
        return DropReason.L4_TRUNCATED
    flags |= (offset & 0x0F) << 8
    header = TcpHeader(
        sport, dport, seq, ack, flags, window, urg, data[MIN_HEADER_LENGTH:hlen], csum
    )
    return TcpSegment(header, data[hlen:])


def build(segment: TcpSegment, src: bytes, dst: bytes) -> bytes:
    """Wire bytes with the checksum computed; options are padded with zeros to 4 octets.

    More than 40 octets of options do not fit Data Offset: `InvalidInputError`.
    """
    h = segment.header
    options = h.options + bytes(-len(h.options) % 4)
    if len(options) > MAX_OPTIONS_LENGTH:
        raise InvalidInputError("options", f"{len(h.options)} octets, at most 40 fit")
    hlen = MIN_HEADER_LENGTH + len(options)
    raw = bytearray(
        _HEADER.pack(
            h.src_port,
            h.dst_port,
            h.seq,
            h.ack,
            (hlen // 4) << 4 | (h.flags >> 8 & 0x0F),
            h.flags & 0xFF,
            h.window,
            0,
            h.urgent,
        )
    )
    raw += options
    raw += segment.payload
    if len(src) == 4:
        pseudo = pseudo_header_v4(src, dst, IpProtocol.TCP, len(raw))
    else:
        pseudo = pseudo_header_v6(src, dst, IpProtocol.TCP, len(raw))
    struct.pack_into("!H", raw, CHECKSUM_OFFSET, internet_checksum(raw, pseudo))
    return bytes(raw)
