"""IPv4 headers (RFC 791): parse with full validation, build with length and checksum filled in."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from onm.errors import InvalidInputError
from onm.packet.checksum import adjust, internet_checksum
from onm.packet.drop import DropReason

MIN_HEADER_LENGTH = 20
MAX_HEADER_LENGTH = 60

# RFC 791 section 3.1, "Flags" and "Fragment Offset".
FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF

_HEADER = struct.Struct("!BBHHHBBH4s4s")

# RFC 791 section 3.1 "Options" (types); RFC 7915 section 4.1 cares about source routes.
OPTION_EOL = 0
OPTION_NOP = 1
OPTION_LSRR = 131
OPTION_SSRR = 137


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """An IPv4 header. `fragment_offset` is in 8-octet units, as on the wire."""

    src: bytes
    dst: bytes
    protocol: int
    ttl: int = 64
    tos: int = 0
    identification: int = 0
    dont_fragment: bool = False
    more_fragments: bool = False
    fragment_offset: int = 0
    options: bytes = b""
    total_length: int = 0
    checksum: int = 0

    @property
    def header_length(self) -> int:
        return MIN_HEADER_LENGTH + len(self.options)

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset != 0


@dataclass(frozen=True, slots=True)
class IPv4Packet:
    header: IPv4Header
    payload: bytes


def parse(
    data: bytes, verify_checksum: bool = True, allow_truncated: bool = False
) -> IPv4Packet | DropReason:
    """Parse a datagram; bytes after Total Length (Ethernet padding) are discarded.

    `allow_truncated` accepts a datagram shorter than its Total Length, as quoted inside ICMP
    errors (RFC 792); the payload is then what is there.
    """
    if len(data) < MIN_HEADER_LENGTH:
        return DropReason.IPV4_TRUNCATED
    vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _HEADER.unpack_from(data)
    if vihl >> 4 != 4:
        return DropReason.IPV4_BAD_VERSION
    hlen = (vihl & 0x0F) * 4
    if hlen < MIN_HEADER_LENGTH:
        return DropReason.IPV4_BAD_HEADER_LENGTH
    if len(data) < hlen:
        return DropReason.IPV4_TRUNCATED
    if total < hlen:
        return DropReason.IPV4_BAD_TOTAL_LENGTH
    end = total
    if total > len(data):
        if not allow_truncated:
            return DropReason.IPV4_TRUNCATED
        end = len(data)
    if verify_checksum and internet_checksum(data[:hlen]) != 0:
        return DropReason.IPV4_BAD_CHECKSUM
    header = IPv4Header(
        src,
        dst,
        proto,
        ttl,
        tos,
        ident,
        bool(frag & FLAG_DF),
        bool(frag & FLAG_MF),
        frag & OFFSET_MASK,
        data[MIN_HEADER_LENGTH:hlen],
        total,
        csum,
    )
    return IPv4Packet(header, data[hlen:end])


def build_header(header: IPv4Header, payload_length: int) -> bytes:
    """The header bytes for a payload of `payload_length`, with Total Length and checksum set.

    Options are padded with End of Option List to a 4-octet boundary (RFC 791 section 3.1);
    more than 40 octets of options raise `InvalidInputError` (a `ValueError`).
    """
    options = header.options
    if len(options) % 4:
        options += bytes(4 - len(options) % 4)
    hlen = MIN_HEADER_LENGTH + len(options)
    if hlen > MAX_HEADER_LENGTH:
        # IHL is 4 bits: a longer header would silently turn into another version number.
        raise InvalidInputError("options", f"{len(header.options)} octets, at most 40 fit")
    frag = (
        (FLAG_DF if header.dont_fragment else 0)
        | (FLAG_MF if header.more_fragments else 0)
        | (header.fragment_offset & OFFSET_MASK)
    )
    raw = bytearray(
        _HEADER.pack(
            0x40 | (hlen // 4),
            header.tos,
            hlen + payload_length,
            header.identification,
            frag,
            header.ttl,
            header.protocol,
            0,
            header.src,
            header.dst,
        )
        + options
    )
    struct.pack_into("!H", raw, 10, internet_checksum(raw))
    return bytes(raw)


def build(header: IPv4Header, payload: bytes) -> bytes:
    """A whole datagram; `header.total_length` and `header.checksum` are recomputed."""
    return build_header(header, len(payload)) + payload


def has_unexpired_source_route(options: bytes) -> bool | DropReason:
    """Whether a Loose or Strict Source Route option still has hops to visit.

    RFC 791 section 3.1: the route is expired when the pointer exceeds the option length.
    Malformed option lists are reported as `IPV4_BAD_OPTIONS`.
    """
    i = 0
    n = len(options)
    while i < n:
        kind = options[i]
        if kind == OPTION_EOL:
            return False
        if kind == OPTION_NOP:
            i += 1
            continue
        if i + 1 >= n:
            return DropReason.IPV4_BAD_OPTIONS
        length = options[i + 1]
        if length < 2 or i + length > n:
            return DropReason.IPV4_BAD_OPTIONS
        if kind in (OPTION_LSRR, OPTION_SSRR):
            if length < 3:
                return DropReason.IPV4_BAD_OPTIONS
            pointer = options[i + 2]
            if pointer <= length:
                return True
        i += length
    return False


def copied_options(options: bytes) -> bytes:
    """The options every fragment repeats: those with the copied flag (RFC 791 section 3.1)."""
    out = bytearray()
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == OPTION_EOL:
            break
        if kind == OPTION_NOP:
            i += 1
            continue
        length = options[i + 1] if i + 1 < len(options) else 0
        if length < 2:
            break
        if kind & 0x80:
            out += options[i : i + length]
        i += length
    return bytes(out)


def fragment(header: IPv4Header, payload: bytes, mtu: int) -> tuple[bytes, ...]:
    """Datagrams of at most `mtu` octets carrying `payload` (RFC 791 section 3.2, "Fragmentation").

    `header` may itself describe a fragment (its offset and MF are honoured); the caller has
    checked that DF is clear. Only copied options are repeated after the first fragment.
    """
    later_options = copied_options(header.options)
    out = []
    start = 0
    offset = header.fragment_offset
    while True:
        options = header.options if start == 0 else later_options
        hlen = MIN_HEADER_LENGTH + len(options) + (-len(options) % 4)
        room = mtu - hlen
        step = len(payload) - start if len(payload) - start <= room else room & ~7
        if step <= 0:
            step = 8  # an MTU below the header size cannot be honoured; make progress anyway
        last = start + step >= len(payload)
        piece = replace(
            header,
            options=options,
            dont_fragment=False,
            more_fragments=header.more_fragments or not last,
            fragment_offset=offset + start // 8,
        )
        out.append(build(piece, payload[start : start + step]))
        if last:
            return tuple(out)
        start += step


def decrement_ttl(datagram: bytes) -> bytes:
    """`datagram` with its TTL one less and the header checksum updated (RFC 1624 section 4)."""
    ttl, protocol = datagram[8], datagram[9]
    old = int.from_bytes(datagram[10:12], "big")
    new = adjust(old, ttl << 8 | protocol, (ttl - 1) << 8 | protocol)
    return datagram[:8] + bytes((ttl - 1, protocol)) + new.to_bytes(2, "big") + datagram[12:]
