"""Offloaded frames from a node: the virtio-net header, checksum completion and segmentation.

A node's kernel hands its interface frames whose work it left to "the hardware": a checksum
still to be computed (CHECKSUM_PARTIAL) and TCP/UDP super-frames up to 64 KiB still to be cut
into segments (GSO). A packet socket with PACKET_VNET_HDR (packet(7)) prefixes every frame with
a `struct virtio_net_hdr` saying so (virtio 1.1 section 5.1.6, "Device Operation"; the legacy
layout, native byte order). The agent is that hardware: it completes or segments the frame
before anything else looks at it. Pure functions: bytes in, frames or a drop reason out.

TCP super-frames may also travel whole (`TcpGso`): the agent re-headers one 64 KiB frame instead
of forty segments and hands it on with a virtio-net header of its own (`tcp_gso_header`), so
that the kernel cuts it where it leaves the machine, or never when it stays on it. The headers
come from translating the frame's `first_segment` (so every rule sees a real segment), made
whole again by `super_headers`; the payload itself is never looked at, nor copied. Such a
frame's TCP checksum field holds the pseudo-header sum only (Linux's CHECKSUM_PARTIAL; what TSO
hardware expects), and whoever cuts it completes each segment's checksum (`segment_tcp` does,
as Linux's tcp_gso_segment does).
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from onm.packet import ethernet, ipv6
from onm.packet.checksum import (
    finish,
    internet_checksum,
    ones_sum,
    pseudo_header_v4,
    pseudo_header_v6,
)
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

LENGTH = 10
_HEADER = struct.Struct("=BBHHHH")
_GSO_SIZE = struct.Struct("=H")
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


_TCP_GSO_TYPES = frozenset(int(t | e) for t in (Gso.TCPV4, Gso.TCPV6) for e in (0, Gso.ECN))


@dataclass(frozen=True, slots=True)
class VirtioNetHeader:
    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int


@dataclass(frozen=True, slots=True)
class TcpGso:
    """A TCP super-frame to be cut into segments by whoever sends it on (Linux's GSO, TSO).

    Its TCP checksum field holds the pseudo-header sum (`super_headers`); each segment's
    checksum is completed when it is cut.
    """

    size: int
    """Payload octets per segment (the sender's MSS): virtio's gso_size."""
    ecn: bool = False
    """The sender uses ECN: CWR goes on the first segment only (VIRTIO_NET_HDR_GSO_ECN)."""


TCP_CHECKSUM_AT = 16
"""Offset of the checksum field in the TCP header (RFC 9293 section 3.1)."""
IPV6_HEADER: Final = ipv6.HEADER_LENGTH
ETHERNET_HEADER: Final = ethernet.HEADER_LENGTH


def parse(data: bytes) -> tuple[VirtioNetHeader, bytes] | DropReason:
    header = parse_header(data)
    return header if isinstance(header, DropReason) else (header, data[LENGTH:])


def parse_header(data: bytes | memoryview) -> VirtioNetHeader | DropReason:
    """The header in front of `data` (the frame after it is left where it is)."""
    if len(data) < LENGTH:
        return DropReason.ETHERNET_TRUNCATED
    return VirtioNetHeader(*_HEADER.unpack_from(data))


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


def tcp_gso(data: bytes | memoryview) -> TcpGso | None:
    """The TCP segmentation the virtio-net header in front of `data` announces; None for any
    other frame. Read straight from the header's bytes: it is asked of every frame received.

    Which IP version the frame really carries is for its reader to check (a GRO'd IPv4-in-IPv6
    frame is announced as TCPV4).
    """
    if len(data) < LENGTH or data[1] not in _TCP_GSO_TYPES:
        return None
    size = _GSO_SIZE.unpack_from(data, 4)[0]
    return _tcp_gso(size, bool(data[1] & Gso.ECN)) if size else None


@functools.lru_cache(maxsize=64)
def _tcp_gso(size: int, ecn: bool) -> TcpGso:
    return TcpGso(size, ecn)


def _tcp_at(packet: bytes | memoryview) -> int | DropReason:
    """Offset of the TCP header in an IPv4 or IPv6 `packet` whose TCP header is all there."""
    if len(packet) < 20:
        return DropReason.IPV4_TRUNCATED
    version = packet[0] >> 4
    if version == 4:
        at = (packet[0] & 0x0F) * 4
        if at < 20 or packet[9] != IpProtocol.TCP:
            return DropReason.PROTOCOL_UNTRANSLATABLE
    elif version == 6:
        at = IPV6_HEADER
        if packet[6] != IpProtocol.TCP:  # super-frames carry no extension header
            return DropReason.PROTOCOL_UNTRANSLATABLE
    else:
        return DropReason.IPV4_BAD_VERSION
    if len(packet) < at + 20:
        return DropReason.L4_TRUNCATED
    thl = (packet[at + 12] >> 4) * 4
    if thl < 20 or len(packet) < at + thl:  # RFC 9293 3.1: Data Offset is at least 5 words
        return DropReason.L4_TRUNCATED
    return at


def split_super(packet: bytes | memoryview) -> tuple[int, int] | DropReason:
    """Where an IPv4 or IPv6 TCP super-packet's payload starts (the IP and TCP headers' length)
    and where it ends (by the IP length field: what follows is link padding)."""
    at = _tcp_at(packet)
    if isinstance(at, DropReason):
        return at
    headers = at + (packet[at + 12] >> 4) * 4
    if packet[0] >> 4 == 4:
        end = int.from_bytes(packet[2:4], "big")
    else:
        end = IPV6_HEADER + int.from_bytes(packet[4:6], "big")
    if end < headers or end > len(packet):
        return DropReason.L4_TRUNCATED
    return headers, end


def first_segment(headers: bytes, payload: bytes | memoryview, size: int) -> bytes | DropReason:
    """The first of the `size`-octet segments the super-packet `headers` + `payload` stands for:
    IP length fields set for it, TCP checksum field left as it was.

    `headers` are its IP and TCP headers (as `split_super` finds them). The segment is what the
    translator decides on: a packet of the size the node's (or the other agent's) kernel will
    really put on a link, so every MTU, DF and error rule applies to it as to the segments.
    """
    at = _tcp_at(headers)
    if isinstance(at, DropReason):
        return at
    if size <= 0 or len(headers) != at + (headers[at + 12] >> 4) * 4:
        return DropReason.L4_TRUNCATED
    chunk = payload[:size]
    return _with_length(headers, at, len(headers) - at + len(chunk)) + bytes(chunk)


def super_headers(segment: bytes, payload_length: int, prefix: bytes = b"") -> bytes | DropReason:
    """The IP and TCP headers of `segment` (one segment, as translated) for a super-packet of
    `payload_length` octets of TCP payload, behind `prefix` (a link header): IP length fields
    set for the whole, TCP checksum field holding the new pseudo-header's sum (what Linux's
    __tcp_v4_send_check / __tcp_v6_send_check leave for the device to complete)."""
    at = _tcp_at(segment)
    if isinstance(at, DropReason):
        return at
    headers = at + (segment[at + 12] >> 4) * 4
    length = headers - at + payload_length
    if segment[0] >> 4 == 4:
        if at + length > 0xFFFF:
            return DropReason.IPV4_BAD_TOTAL_LENGTH  # more than one IPv4 datagram holds
        pseudo = pseudo_header_v4(segment[12:16], segment[16:20], IpProtocol.TCP, length)
    else:
        if length > 0xFFFF:
            return DropReason.IPV6_BAD_PAYLOAD_LENGTH  # a jumbogram (RFC 2675): not here
        pseudo = pseudo_header_v6(segment[8:24], segment[24:40], IpProtocol.TCP, length)
    head = bytearray(_with_length(segment[:headers], at, length))
    struct.pack_into("!H", head, at + TCP_CHECKSUM_AT, pseudo)
    return prefix + head


def _with_length(headers: bytes | bytearray, at: int, tcp_length: int) -> bytes:
    """IP + TCP `headers` (TCP at `at`) with the IP length field set for `tcp_length` octets of
    TCP header and payload (IPv4: Total Length and header checksum; IPv6: Payload Length)."""
    out = bytearray(headers)
    if out[0] >> 4 == 4:
        struct.pack_into("!H", out, 2, at + tcp_length)
        struct.pack_into("!H", out, 10, 0)
        struct.pack_into("!H", out, 10, internet_checksum(out[:at]))
    else:
        struct.pack_into("!H", out, 4, tcp_length)
    return bytes(out)


def tcp_gso_header(packet: bytes, gso: TcpGso) -> bytes | DropReason:
    """The virtio-net header that sends the IPv4/IPv6 TCP super-packet `packet` behind a
    14-octet Ethernet header (its checksum field as `super_headers` leaves it), to be
    cut into `gso.size` segments: NEEDS_CSUM from the TCP header on, gso_type by IP version."""
    at = _tcp_at(packet)
    if isinstance(at, DropReason):
        return at
    start = ETHERNET_HEADER + at
    headers = start + (packet[at + 12] >> 4) * 4
    gso_type = (Gso.TCPV4 if packet[0] >> 4 == 4 else Gso.TCPV6) | (Gso.ECN if gso.ecn else 0)
    return _HEADER.pack(F_NEEDS_CSUM, gso_type, headers, gso.size, start, TCP_CHECKSUM_AT)


def _ipv4_header(header: bytes, total: int, ident: int) -> bytes:
    """A copy of IPv4 `header` with another Total Length and Identification, checksum redone."""
    out = bytearray(header)
    struct.pack_into("!HH", out, 2, total, ident & 0xFFFF)
    struct.pack_into("!H", out, 10, 0)
    struct.pack_into("!H", out, 10, internet_checksum(out))
    return bytes(out)


def segment_tcp4(frame: bytes, mss: int) -> list[bytes] | DropReason:
    """Cut an Ethernet + TCP/IPv4 super-frame into segments of `mss` payload octets."""
    parts = _ipv4_parts(frame, IpProtocol.TCP)
    if isinstance(parts, DropReason):
        return parts
    segments = segment_tcp(frame[14:], mss)
    if isinstance(segments, DropReason):
        return segments
    ethernet = frame[:14]
    return [ethernet + segment for segment in segments]


def segment_tcp(packet: bytes, mss: int) -> list[bytes] | DropReason:
    """Cut an IPv4 or IPv6 TCP super-packet into segments of `mss` payload octets (RFC 9293
    3.7.1): sequence numbers advance, FIN/PSH only on the last, CWR only on the first (RFC
    3168); every checksum complete, whatever the super-packet's field held. IPv4 segments get
    consecutive Identifications; IPv6 ones need none."""
    at = _tcp_at(packet)
    if isinstance(at, DropReason):
        return at
    if mss <= 0:
        return DropReason.L4_TRUNCATED
    thl = (packet[at + 12] >> 4) * 4
    if packet[0] >> 4 == 4:
        total = int.from_bytes(packet[2:4], "big")
        if total < at + thl or total > len(packet):
            return DropReason.IPV4_BAD_TOTAL_LENGTH
        ident = int.from_bytes(packet[4:6], "big")
        fixed = packet[:at]
        src4, dst4 = packet[12:16], packet[16:20]

        def ip_header(i: int, length: int) -> tuple[bytes, int]:
            header = _ipv4_header(fixed, at + length, ident + i)
            return header, pseudo_header_v4(src4, dst4, IpProtocol.TCP, length)

        end = total
    else:
        end = IPV6_HEADER + int.from_bytes(packet[4:6], "big")
        if end < at + thl or end > len(packet):
            return DropReason.IPV6_BAD_PAYLOAD_LENGTH
        fixed6 = bytearray(packet[:IPV6_HEADER])
        src6, dst6 = packet[8:24], packet[24:40]

        def ip_header(i: int, length: int) -> tuple[bytes, int]:
            struct.pack_into("!H", fixed6, 4, length)
            return bytes(fixed6), pseudo_header_v6(src6, dst6, IpProtocol.TCP, length)

    return _cut_tcp(packet[at : at + thl], packet[at + thl : end], mss, ip_header)


def _cut_tcp(
    tcp: bytes, payload: bytes, mss: int, ip_header: Callable[[int, int], tuple[bytes, int]]
) -> list[bytes]:
    """Segments of `payload` behind copies of the TCP header `tcp`; `ip_header(i, length)`
    gives segment i's IP header for a TCP length and the sum of its pseudo-header."""
    thl = len(tcp)
    seq = int.from_bytes(tcp[4:8], "big")
    flags = tcp[13]
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
        ip, pseudo = ip_header(i, thl + len(chunk))
        struct.pack_into("!H", header, 16, finish(ones_sum(bytes(header) + chunk, pseudo)))
        out.append(ip + bytes(header) + chunk)
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
        ip = _ipv4_header(frame[14 : 14 + ihl], ihl + length, ident + i)
        out.append(ethernet + ip + header[:6] + value.to_bytes(2, "big") + chunk)
    return out
