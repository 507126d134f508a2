"""What a translation returns, and the knobs RFC 7915 asks a translator to expose."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from onm.errors import InvalidInputError
from onm.packet.drop import DropReason


class UdpZeroChecksum(enum.Enum):
    """What to do with an unfragmented IPv4 UDP datagram whose checksum is zero (RFC 7915 4.5)."""

    DROP = "drop"
    COMPUTE = "compute"


@dataclass(frozen=True, slots=True)
class SiitConfig:
    """Translator settings; the defaults are RFC 7915's."""

    lowest_ipv6_mtu: int = 1280
    """RFC 7915 4.1: an IPv4 packet without DF is fragmented to fit this (minimum 1280)."""
    ipv6_mtu: int = 1500
    """Next-hop MTU on the IPv6 side: a DF packet that would exceed it gets Fragmentation Needed."""
    ipv4_mtu: int = 1500
    """Next-hop MTU on the IPv4 side: an IPv6 packet exceeding it gets Packet Too Big."""
    decrement_ttl: bool = True
    """The translator is a router (RFC 7915 section 1.4) and decrements TTL / Hop Limit."""
    copy_tos: bool = True
    """Copy TOS <-> Traffic Class (RFC 7915 4.1 / 5.1); False writes zero."""
    udp_zero_checksum: UdpZeroChecksum = UdpZeroChecksum.DROP
    icmp_source_v4: bytes | None = None
    """Address the translator sends its own ICMPv4 errors from; None: it sends none."""
    icmp_source_v6: bytes | None = None
    """Address the translator sends its own ICMPv6 errors from; None: it sends none."""
    icmp_error_pool_v4: bytes | None = None
    """RFC 6791: IPv4 source for translated ICMPv6 errors whose IPv6 source cannot be mapped."""

    def __post_init__(self) -> None:
        # RFC 8200 section 5 (IPv6 links carry 1280 octets) and RFC 791 (IPv4: 68).
        for name, value, least in (
            ("lowest_ipv6_mtu", self.lowest_ipv6_mtu, 1280),
            ("ipv6_mtu", self.ipv6_mtu, 1280),
            ("ipv4_mtu", self.ipv4_mtu, 68),
        ):
            if not least <= value <= 65535:
                raise InvalidInputError(name, f"must be {least}..65535, got {value}")
        for name, address, length in (
            ("icmp_source_v4", self.icmp_source_v4, 4),
            ("icmp_source_v6", self.icmp_source_v6, 16),
            ("icmp_error_pool_v4", self.icmp_error_pool_v4, 4),
        ):
            if address is not None and len(address) != length:
                raise InvalidInputError(name, f"must be {length} packed octets")


@dataclass(frozen=True, slots=True)
class Translated:
    """The packet in the other family; several when the translator had to fragment."""

    packets: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Drop:
    """The packet is discarded, for `reason`."""

    reason: DropReason


@dataclass(frozen=True, slots=True)
class IcmpError:
    """The packet is discarded for `reason`; `packet` (an ICMP error in the input's family,
    addressed to the input's source) goes back toward the sender."""

    packet: bytes
    reason: DropReason


Result = Translated | Drop | IcmpError
