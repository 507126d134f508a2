"""ICMP for IPv4 (RFC 792): messages, their types, and which of them are errors."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from onm.packet.checksum import internet_checksum
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol

HEADER_LENGTH = 8

_HEADER = struct.Struct("!BBH4s")


class IcmpV4Type(enum.IntEnum):
    """ICMPv4 types (RFC 792; RFC 1191 for Fragmentation Needed's MTU; RFC 950, RFC 1256)."""

    ECHO_REPLY = 0
    DEST_UNREACHABLE = 3
    SOURCE_QUENCH = 4
    REDIRECT = 5
    ALTERNATE_HOST_ADDRESS = 6
    ECHO_REQUEST = 8
    ROUTER_ADVERTISEMENT = 9
    ROUTER_SOLICITATION = 10
    TIME_EXCEEDED = 11
    PARAMETER_PROBLEM = 12
    TIMESTAMP = 13
    TIMESTAMP_REPLY = 14
    INFORMATION_REQUEST = 15
    INFORMATION_REPLY = 16
    ADDRESS_MASK_REQUEST = 17
    ADDRESS_MASK_REPLY = 18


class Unreachable(enum.IntEnum):
    """Destination Unreachable codes (RFC 792, RFC 1122 section 3.2.2.1, RFC 1812 5.2.7.1)."""

    NET = 0
    HOST = 1
    PROTOCOL = 2
    PORT = 3
    FRAGMENTATION_NEEDED = 4
    SOURCE_ROUTE_FAILED = 5
    NET_UNKNOWN = 6
    HOST_UNKNOWN = 7
    SOURCE_HOST_ISOLATED = 8
    NET_PROHIBITED = 9
    HOST_PROHIBITED = 10
    NET_TOS = 11
    HOST_TOS = 12
    ADMIN_PROHIBITED = 13
    PRECEDENCE_VIOLATION = 14
    PRECEDENCE_CUTOFF = 15


class TimeExceeded(enum.IntEnum):
    TTL = 0
    REASSEMBLY = 1


# RFC 792 error messages: they carry the offending datagram's header and first octets.
ERROR_TYPES = frozenset(
    {
        IcmpV4Type.DEST_UNREACHABLE,
        IcmpV4Type.SOURCE_QUENCH,
        IcmpV4Type.REDIRECT,
        IcmpV4Type.TIME_EXCEEDED,
        IcmpV4Type.PARAMETER_PROBLEM,
    }
)


@dataclass(frozen=True, slots=True)
class IcmpV4Message:
    """`rest` is the 4 octets after the checksum (id/sequence, pointer, next-hop MTU...)."""

    type: int
    code: int
    rest: bytes
    body: bytes
    checksum: int = 0

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES


def parse(data: bytes, verify_checksum: bool = True) -> IcmpV4Message | DropReason:
    if len(data) < HEADER_LENGTH:
        return DropReason.ICMP_TRUNCATED
    if verify_checksum and internet_checksum(data) != 0:
        return DropReason.ICMP_BAD_CHECKSUM
    mtype, code, csum, rest = _HEADER.unpack_from(data)
    return IcmpV4Message(mtype, code, rest, data[HEADER_LENGTH:], csum)


def build(message: IcmpV4Message) -> bytes:
    """Wire bytes with the checksum computed over the whole message (RFC 792)."""
    raw = bytearray(_HEADER.pack(message.type, message.code, 0, message.rest) + message.body)
    struct.pack_into("!H", raw, 2, internet_checksum(raw))
    return bytes(raw)


def echo_rest(identifier: int, sequence: int) -> bytes:
    return struct.pack("!HH", identifier, sequence)


def mtu_rest(mtu: int) -> bytes:
    """Fragmentation Needed: unused(16) then Next-Hop MTU (RFC 1191 section 4)."""
    return struct.pack("!HH", 0, mtu)


def pointer_rest(pointer: int) -> bytes:
    """Parameter Problem: pointer in the first octet (RFC 792)."""
    return bytes((pointer, 0, 0, 0))


def carries_error(protocol: int, fragment_offset: int, payload: bytes) -> bool:
    """Whether an IPv4 datagram's payload starts an ICMP error (never answered with another,
    RFC 1122 section 3.2.2)."""
    return (
        protocol == IpProtocol.ICMP
        and fragment_offset == 0
        and bool(payload)
        and payload[0] in ERROR_TYPES
    )
