"""ICMP for IPv6 (RFC 4443): messages, types, and the pseudo-header checksum."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from onm.packet.checksum import internet_checksum, pseudo_header_v6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

HEADER_LENGTH = 8
MIN_MTU = 1280  # RFC 8200 section 5

_HEADER = struct.Struct("!BBH4s")


class IcmpV6Type(enum.IntEnum):
    """ICMPv6 types (RFC 4443 section 2.1; RFC 4861 for neighbour discovery)."""

    DEST_UNREACHABLE = 1
    PACKET_TOO_BIG = 2
    TIME_EXCEEDED = 3
    PARAMETER_PROBLEM = 4
    ECHO_REQUEST = 128
    ECHO_REPLY = 129
    MLD_QUERY = 130
    MLD_REPORT = 131
    MLD_DONE = 132
    ROUTER_SOLICITATION = 133
    ROUTER_ADVERTISEMENT = 134
    NEIGHBOR_SOLICITATION = 135
    NEIGHBOR_ADVERTISEMENT = 136
    REDIRECT = 137


class Unreachable(enum.IntEnum):
    """Destination Unreachable codes (RFC 4443 section 3.1)."""

    NO_ROUTE = 0
    ADMIN_PROHIBITED = 1
    BEYOND_SCOPE = 2
    ADDRESS = 3
    PORT = 4
    SOURCE_POLICY = 5
    REJECT_ROUTE = 6


class ParameterProblem(enum.IntEnum):
    """Parameter Problem codes (RFC 4443 section 3.4)."""

    ERRONEOUS_HEADER = 0
    UNRECOGNIZED_NEXT_HEADER = 1
    UNRECOGNIZED_OPTION = 2


@dataclass(frozen=True, slots=True)
class IcmpV6Message:
    type: int
    code: int
    rest: bytes
    body: bytes
    checksum: int = 0

    @property
    def is_error(self) -> bool:
        """Types 0..127 are errors (RFC 4443 section 2.1)."""
        return self.type < 128


def parse(
    data: bytes, src: bytes, dst: bytes, verify_checksum: bool = True
) -> IcmpV6Message | DropReason:
    """Parse a message carried between `src` and `dst` (needed for the checksum)."""
    if len(data) < HEADER_LENGTH:
        return DropReason.ICMP_TRUNCATED
    if verify_checksum:
        pseudo = pseudo_header_v6(src, dst, IpProtocol.ICMPV6, len(data))
        if internet_checksum(data, pseudo) != 0:
            return DropReason.ICMP_BAD_CHECKSUM
    mtype, code, csum, rest = _HEADER.unpack_from(data)
    return IcmpV6Message(mtype, code, rest, data[HEADER_LENGTH:], csum)


def build(message: IcmpV6Message, src: bytes, dst: bytes) -> bytes:
    """Wire bytes with the checksum over pseudo-header and message (RFC 4443 section 2.3)."""
    raw = bytearray(_HEADER.pack(message.type, message.code, 0, message.rest) + message.body)
    pseudo = pseudo_header_v6(src, dst, IpProtocol.ICMPV6, len(raw))
    struct.pack_into("!H", raw, 2, internet_checksum(raw, pseudo))
    return bytes(raw)


def echo_rest(identifier: int, sequence: int) -> bytes:
    return struct.pack("!HH", identifier, sequence)


def mtu_rest(mtu: int) -> bytes:
    """Packet Too Big: the 32-bit MTU (RFC 4443 section 3.2)."""
    return struct.pack("!I", mtu)


def pointer_rest(pointer: int) -> bytes:
    """Parameter Problem: the 32-bit pointer (RFC 4443 section 3.4)."""
    return struct.pack("!I", pointer)
