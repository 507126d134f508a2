"""Offloaded frames from a node: the virtio-net header, checksum completion and segmentation.

A node's kernel hands its interface frames whose work it left to "the hardware": a checksum
still to be computed (CHECKSUM_PARTIAL) and TCP/UDP super-frames up to 64 KiB still to be cut
into segments (GSO). A packet socket with PACKET_VNET_HDR (packet(7)) prefixes every frame with
a `struct virtio_net_hdr` saying so (virtio 1.1 section 5.1.6, "Device Operation"; the legacy
layout, native byte order). The agent is that hardware: it completes or segments the frame
before anything else looks at it. Pure functions: bytes in, frames or a drop reason out.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from onm.packet.checksum import finish, internet_checksum, ones_sum, pseudo_header_v4
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

LENGTH = 10
_HEADER = struct.Struct("=BBHHHH")
NONE = bytes(LENGTH)
"""The header of a frame that needs nothing (what the agent sends toward nodes)."""

# virtio 1.1 section 5.1.6: flags and gso_type values.
F_NEEDS_CSUM = 1
F_DATA_VALID = 2


class Gso(enum.IntEnum):
    NONE = 0
    TCPV4 = 1
    UDP = 3
    TCPV6 = 4
    UDP_L4 = 5
    ECN = 0x80


@dataclass(frozen=True, slots=True)
class VirtioNetHeader:
    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int


def parse(data: bytes) -> tuple[VirtioNetHeader, bytes] | DropReason:
    if len(data) < LENGTH:
        return DropReason.ETHERNET_TRUNCATED
    return VirtioNetHeader(*_HEADER.unpack_from(data)), data[LENGTH:]


def build(header: VirtioNetHeader) -> bytes:
    return _HEADER.pack(
        header.flags,
        header.gso_type,
        header.hdr_len,
        header.gso_size,
        header.csum_start,
        header.csum_offset,
    )


def complete_checksum(frame: bytes, start: int, offset: int) -> bytes | DropReason:
    """Fill in a partial checksum: the field holds the pseudo-header sum; the rest is summed
    from `start` and the complement stored at `start + offset` (what a NIC does)."""
    at = start + offset
    if start > len(frame) or at + 2 > len(frame):
        return DropReason.L4_TRUNCATED
    value = internet_checksum(frame[start:])
    return frame[:at] + value.to_bytes(2, "big") + frame[at + 2 :]


def resolve(header: VirtioNetHeader, frame: bytes) -> list[bytes] | DropReason:
    """The wire frames `frame` stands for: segmented, checksummed, or itself."""
    gso = header.gso_type & ~Gso.ECN
    if gso == Gso.NONE:
        if header.flags & F_NEEDS_CSUM:
            done = complete_checksum(frame, header.csum_start, header.csum_offset)
            return done if isinstance(done, DropReason) else [done]
        return [frame]
    if gso == Gso.TCPV4:
        return segment_tcp4(frame, header.gso_size)
    if gso in (Gso.UDP_L4, Gso.UDP):
        return segment_udp4(frame, header.gso_size)
    return DropReason.ETHERTYPE_UNSUPPORTED  # IPv6 from nodes is not carried (yet)


def _ipv4_parts(frame: bytes, protocol: int) -> tuple[int, int] | DropReason:
    """(IPv4 header length, transport header offset) of an Ethernet + IPv4 frame."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
        return DropReason.IPV4_TRUNCATED
    ihl = (frame[14] & 0x0F) * 4
    if ihl < 20 or frame[23] != protocol:
        return DropReason.IPV4_BAD_HEADER_LENGTH
    return ihl, 14 + ihl


def _ipv4_header(frame: bytes, ihl: int, total: int, ident: int) -> bytes:
    header = bytearray(frame[14 : 14 + ihl])
    struct.pack_into("!H", header, 2, total)
    struct.pack_into("!H", header, 4, ident & 0xFFFF)
    struct.pack_into("!H", header, 10, 0)
    struct.pack_into("!H", header, 10, internet_checksum(header))
    return bytes(header)


def segment_tcp4(frame: bytes, mss: int) -> list[bytes] | DropReason:
    """Cut a TCP/IPv4 super-frame into segments of `mss` payload octets (RFC 9293 3.7.1):
    sequence numbers advance, FIN/PSH only on the last, CWR only on the first (RFC 3168)."""
    parts = _ipv4_parts(frame, IpProtocol.TCP)
    if isinstance(parts, DropReason):
        return parts
    ihl, at = parts
    if len(frame) < at + 20 or mss <= 0:
        return DropReason.L4_TRUNCATED
    thl = (frame[at + 12] >> 4) * 4
    if thl < 20 or len(frame) < at + thl:
        return DropReason.L4_TRUNCATED
    ethernet = frame[:14]
    ident = int.from_bytes(frame[18:20], "big")
    src, dst = frame[26:30], frame[30:34]
    tcp = bytearray(frame[at : at + thl])
    seq = int.from_bytes(tcp[4:8], "big")
    flags = tcp[13]
    payload = frame[at + thl :]
    out = []
    count = max(1, -(-len(payload) // mss))
    for i in range(count):
        chunk = payload[i * mss : (i + 1) * mss]
        header = bytearray(tcp)
        struct.pack_into("!I", header, 4, (seq + i * mss) & 0xFFFFFFFF)
        header[13] = flags
        if i < count - 1:
            header[13] &= ~0x09  # FIN, PSH
        if i > 0:
            header[13] &= ~0x80  # CWR
        struct.pack_into("!H", header, 16, 0)
        pseudo = pseudo_header_v4(src, dst, IpProtocol.TCP, thl + len(chunk))
        struct.pack_into("!H", header, 16, finish(ones_sum(bytes(header) + chunk, pseudo)))
        ip = _ipv4_header(frame, ihl, ihl + thl + len(chunk), ident + i)
        out.append(ethernet + ip + bytes(header) + chunk)
    return out


def segment_udp4(frame: bytes, size: int) -> list[bytes] | DropReason:
    """Cut a UDP/IPv4 GSO super-frame into datagrams of `size` payload octets each."""
    parts = _ipv4_parts(frame, IpProtocol.UDP)
    if isinstance(parts, DropReason):
        return parts
    ihl, at = parts
    if len(frame) < at + 8 or size <= 0:
        return DropReason.L4_TRUNCATED
    ethernet = frame[:14]
    ident = int.from_bytes(frame[18:20], "big")
    src, dst = frame[26:30], frame[30:34]
    ports = frame[at : at + 4]
    payload = frame[at + 8 :]
    out = []
    for i in range(max(1, -(-len(payload) // size))):
        chunk = payload[i * size : (i + 1) * size]
        length = 8 + len(chunk)
        header = ports + length.to_bytes(2, "big") + b"\x00\x00"
        pseudo = pseudo_header_v4(src, dst, IpProtocol.UDP, length)
        value = finish(ones_sum(header + chunk, pseudo)) or 0xFFFF
        ip = _ipv4_header(frame, ihl, ihl + length, ident + i)
        out.append(ethernet + ip + header[:6] + value.to_bytes(2, "big") + chunk)
    return out
