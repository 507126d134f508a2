"""ICMP type, code and field mappings between ICMPv4 and ICMPv6 (RFC 7915 sections 4.2, 5.2).

The two directions are separate tables because the RFC defines them separately and they are not
inverses of each other (several ICMPv4 codes fold into one ICMPv6 code). Messages absent from a
table are silently dropped, as the RFC says for single-hop, obsolete and unknown messages.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from onm.packet.icmpv4 import IcmpV4Type
from onm.packet.icmpv4 import TimeExceeded as V4TimeExceeded
from onm.packet.icmpv4 import Unreachable as V4Unreachable
from onm.packet.icmpv6 import IcmpV6Type
from onm.packet.icmpv6 import ParameterProblem as V6ParameterProblem
from onm.packet.icmpv6 import Unreachable as V6Unreachable


class Rest(enum.Enum):
    """How the 4 octets after the checksum are rewritten."""

    COPY = "copy"  # echo identifier and sequence
    ZERO = "zero"  # unused (RFC 4884 length handled separately)
    MTU = "mtu"  # Fragmentation Needed <-> Packet Too Big
    POINTER = "pointer"  # Parameter Problem pointer, through the pointer tables
    NEXT_HEADER = "next_header"  # Protocol Unreachable -> pointer to IPv6 Next Header (6)


class Mapping(NamedTuple):
    type: int
    code: int
    rest: Rest


# https://www.rfc-editor.org/rfc/rfc7915#section-4.2 "ICMPv4 query messages"
ECHO_4TO6: Final[dict[int, int]] = {
    IcmpV4Type.ECHO_REQUEST: IcmpV6Type.ECHO_REQUEST,
    IcmpV4Type.ECHO_REPLY: IcmpV6Type.ECHO_REPLY,
}
# https://www.rfc-editor.org/rfc/rfc7915#section-5.2 "ICMPv6 informational messages"
ECHO_6TO4: Final[dict[int, int]] = {v6: v4 for v4, v6 in ECHO_4TO6.items()}

_DU4 = IcmpV4Type.DEST_UNREACHABLE
_DU6 = IcmpV6Type.DEST_UNREACHABLE
_NO_ROUTE = Mapping(_DU6, V6Unreachable.NO_ROUTE, Rest.ZERO)
_PROHIBITED = Mapping(_DU6, V6Unreachable.ADMIN_PROHIBITED, Rest.ZERO)

# https://www.rfc-editor.org/rfc/rfc7915#section-4.2 "ICMPv4 error messages"
# (Source Quench, Redirect, Alternate Host Address, Precedence Violation: silently dropped.)
ERRORS_4TO6: Final[dict[tuple[int, int], Mapping]] = {
    (_DU4, V4Unreachable.NET): _NO_ROUTE,
    (_DU4, V4Unreachable.HOST): _NO_ROUTE,
    (_DU4, V4Unreachable.PROTOCOL): Mapping(
        IcmpV6Type.PARAMETER_PROBLEM,
        V6ParameterProblem.UNRECOGNIZED_NEXT_HEADER,
        Rest.NEXT_HEADER,
    ),
    (_DU4, V4Unreachable.PORT): Mapping(_DU6, V6Unreachable.PORT, Rest.ZERO),
    (_DU4, V4Unreachable.FRAGMENTATION_NEEDED): Mapping(IcmpV6Type.PACKET_TOO_BIG, 0, Rest.MTU),
    (_DU4, V4Unreachable.SOURCE_ROUTE_FAILED): _NO_ROUTE,
    (_DU4, V4Unreachable.NET_UNKNOWN): _NO_ROUTE,
    (_DU4, V4Unreachable.HOST_UNKNOWN): _NO_ROUTE,
    (_DU4, V4Unreachable.SOURCE_HOST_ISOLATED): _NO_ROUTE,
    (_DU4, V4Unreachable.NET_PROHIBITED): _PROHIBITED,
    (_DU4, V4Unreachable.HOST_PROHIBITED): _PROHIBITED,
    (_DU4, V4Unreachable.NET_TOS): _NO_ROUTE,
    (_DU4, V4Unreachable.HOST_TOS): _NO_ROUTE,
    (_DU4, V4Unreachable.ADMIN_PROHIBITED): _PROHIBITED,
    (_DU4, V4Unreachable.PRECEDENCE_CUTOFF): _PROHIBITED,
    (IcmpV4Type.TIME_EXCEEDED, V4TimeExceeded.TTL): Mapping(IcmpV6Type.TIME_EXCEEDED, 0, Rest.ZERO),
    (IcmpV4Type.TIME_EXCEEDED, V4TimeExceeded.REASSEMBLY): Mapping(
        IcmpV6Type.TIME_EXCEEDED, 1, Rest.ZERO
    ),
    # Parameter Problem: code 0 (pointer) and 2 (bad length) -> code 0 with the pointer
    # translated; code 1 (missing option) is dropped.
    (IcmpV4Type.PARAMETER_PROBLEM, 0): Mapping(
        IcmpV6Type.PARAMETER_PROBLEM, V6ParameterProblem.ERRONEOUS_HEADER, Rest.POINTER
    ),
    (IcmpV4Type.PARAMETER_PROBLEM, 2): Mapping(
        IcmpV6Type.PARAMETER_PROBLEM, V6ParameterProblem.ERRONEOUS_HEADER, Rest.POINTER
    ),
}

_HOST_UNREACHABLE = Mapping(_DU4, V4Unreachable.HOST, Rest.ZERO)

# https://www.rfc-editor.org/rfc/rfc7915#section-5.2 "ICMPv6 error messages"
ERRORS_6TO4: Final[dict[tuple[int, int], Mapping]] = {
    (_DU6, V6Unreachable.NO_ROUTE): _HOST_UNREACHABLE,
    (_DU6, V6Unreachable.ADMIN_PROHIBITED): Mapping(_DU4, V4Unreachable.HOST_PROHIBITED, Rest.ZERO),
    (_DU6, V6Unreachable.BEYOND_SCOPE): _HOST_UNREACHABLE,
    (_DU6, V6Unreachable.ADDRESS): _HOST_UNREACHABLE,
    (_DU6, V6Unreachable.PORT): Mapping(_DU4, V4Unreachable.PORT, Rest.ZERO),
    (IcmpV6Type.PACKET_TOO_BIG, 0): Mapping(_DU4, V4Unreachable.FRAGMENTATION_NEEDED, Rest.MTU),
    (IcmpV6Type.TIME_EXCEEDED, 0): Mapping(IcmpV4Type.TIME_EXCEEDED, 0, Rest.ZERO),
    (IcmpV6Type.TIME_EXCEEDED, 1): Mapping(IcmpV4Type.TIME_EXCEEDED, 1, Rest.ZERO),
    (IcmpV6Type.PARAMETER_PROBLEM, V6ParameterProblem.ERRONEOUS_HEADER): Mapping(
        IcmpV4Type.PARAMETER_PROBLEM, 0, Rest.POINTER
    ),
    (IcmpV6Type.PARAMETER_PROBLEM, V6ParameterProblem.UNRECOGNIZED_NEXT_HEADER): Mapping(
        _DU4, V4Unreachable.PROTOCOL, Rest.ZERO
    ),
}

# https://www.rfc-editor.org/rfc/rfc7915#section-4.2 Figure 3: IPv4 header octet -> IPv6 header
# octet for Parameter Problem pointers. Octets not listed (Identification, Flags/Fragment Offset,
# Header Checksum, options) have no IPv6 counterpart: the message is dropped.
POINTER_4TO6: Final[dict[int, int]] = {
    0: 0,  # Version/IHL -> Version/Traffic Class
    1: 1,  # Type Of Service -> Traffic Class/Flow Label
    2: 4,  # Total Length -> Payload Length
    3: 4,
    8: 7,  # Time to Live -> Hop Limit
    9: 6,  # Protocol -> Next Header
    **dict.fromkeys(range(12, 16), 8),  # Source Address
    **dict.fromkeys(range(16, 20), 24),  # Destination Address
}

# https://www.rfc-editor.org/rfc/rfc7915#section-5.2 Figure 6: IPv6 header octet -> IPv4 header
# octet. Flow Label (octets 2 and 3) has no IPv4 counterpart: dropped.
POINTER_6TO4: Final[dict[int, int]] = {
    0: 0,  # Version/Traffic Class -> Version/IHL, Type Of Service
    1: 1,  # Traffic Class/Flow Label -> Type Of Service
    4: 2,  # Payload Length -> Total Length
    5: 2,
    6: 9,  # Next Header -> Protocol
    7: 8,  # Hop Limit -> Time to Live
    **dict.fromkeys(range(8, 24), 12),  # Source Address
    **dict.fromkeys(range(24, 40), 16),  # Destination Address
}

# RFC 1191 section 7, Table 7-1: the MTU plateaus used when a router reports Fragmentation
# Needed with a zero Next-Hop MTU (RFC 7915 section 4.2).
MTU_PLATEAUS: Final[tuple[int, ...]] = (
    65535,
    32000,
    17914,
    8166,
    4352,
    2002,
    1492,
    1006,
    508,
    296,
    68,
)

# RFC 4884 section 4: where the "length of original datagram" lives (`onm.packet.rfc4884` uses
# it). ICMPv4 counts 32-bit words in octet 1 of the rest field; ICMPv6 64-bit words in octet 0.
LENGTH_ATTRIBUTE_V4: Final[frozenset[int]] = frozenset(
    {IcmpV4Type.DEST_UNREACHABLE, IcmpV4Type.TIME_EXCEEDED, IcmpV4Type.PARAMETER_PROBLEM}
)
LENGTH_ATTRIBUTE_V6: Final[frozenset[int]] = frozenset(
    {IcmpV6Type.DEST_UNREACHABLE, IcmpV6Type.TIME_EXCEEDED}
)


def plateau_mtu(total_length: int) -> int:
    """The greatest RFC 1191 plateau below `total_length`, at least the IPv6 minimum of 1280."""
    for plateau in MTU_PLATEAUS:
        if plateau < total_length:
            return max(plateau, 1280)
    return 1280
