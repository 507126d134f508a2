"""Address mappers: how the SIIT translator turns IPv4 addresses into IPv6 ones and back.

The translator never decides addresses itself; it asks a mapper, so one translator serves both
onm's substrate layout and a plain RFC 6052 prefix (which makes it comparable with other SIIT
implementations' test vectors). A mapper answers None for an address it cannot map; the packet is
then dropped as `ADDRESS_UNMAPPABLE`.

Source and destination are asked separately (RFC 7915 section 6 allows different algorithms per
direction). For the packet quoted inside an ICMP error, which travelled the other way, the
translator asks for its source as a destination and vice versa.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Protocol

from onm.addressing import network_id_of
from onm.errors import InvalidInputError


class AddressMapper(Protocol):
    def source_4to6(self, address: bytes) -> bytes | None: ...
    def destination_4to6(self, address: bytes) -> bytes | None: ...
    def source_6to4(self, address: bytes) -> bytes | None: ...
    def destination_6to4(self, address: bytes) -> bytes | None: ...


# RFC 6052 section 2.2: where the 32 IPv4 bits go for each prefix length; bits 64..71 (octet 8,
# the "u" octet) are always zero and are skipped.
_RFC6052_LENGTHS = frozenset({32, 40, 48, 56, 64, 96})


class Rfc6052Mapper:
    """IPv4-embedded IPv6 addresses under one prefix (RFC 6052 section 2.2), both directions."""

    __slots__ = ("_length", "_prefix", "_prefix_bytes")

    def __init__(self, prefix: ipaddress.IPv6Network | str) -> None:
        try:
            network = ipaddress.IPv6Network(prefix)
        except ValueError as exc:
            raise InvalidInputError("prefix", str(exc)) from None
        if network.prefixlen not in _RFC6052_LENGTHS:
            raise InvalidInputError(
                "prefix",
                f"RFC 6052 allows /32, /40, /48, /56, /64 or /96, got /{network.prefixlen}",
            )
        if network.network_address.packed[8] != 0:
            # Only a /96 can get here with it set: shorter prefixes end before octet 8.
            raise InvalidInputError("prefix", "bits 64..71 (the u octet) must be zero")
        self._prefix = network
        self._length = network.prefixlen // 8
        self._prefix_bytes = network.network_address.packed

    def embed(self, address: bytes) -> bytes:
        n = self._length
        if n == 12:
            return self._prefix_bytes[:12] + address
        # Octets before the u octet, then the u octet, then the rest, then the suffix zeros.
        v4_before_u = max(0, 8 - n)
        out = self._prefix_bytes[:n] + address[:v4_before_u]
        out += b"\x00" + address[v4_before_u:]
        return out + bytes(16 - len(out))

    def extract(self, address: bytes) -> bytes | None:
        n = self._length
        if address[:n] != self._prefix_bytes[:n]:
            return None
        if n == 12:
            return address[12:]
        v4_before_u = max(0, 8 - n)
        return address[n : n + v4_before_u] + address[9 : 9 + 4 - v4_before_u]

    source_4to6 = embed
    destination_4to6 = embed
    source_6to4 = extract
    destination_6to4 = extract


class SubstrateMapper:
    """onm's mapping for one virtual network (DESIGN.md section 2).

    IPv4 -> IPv6 looks the address up in `locations` (virtual IPv4 -> the substrate address where
    that node lives, as resolved by the manager); IPv6 -> IPv4 takes the embedded IPv4 from any
    substrate address that carries this network's id. Whether that address is the right host for
    the node is the receiving agent's check, not the translator's.
    """

    __slots__ = ("_locations", "network_id")

    def __init__(self, network_id: int, locations: Mapping[bytes, bytes]) -> None:
        self.network_id = network_id
        self._locations = locations

    def source_4to6(self, address: bytes) -> bytes | None:
        return self._locations.get(address)

    destination_4to6 = source_4to6

    def source_6to4(self, address: bytes) -> bytes | None:
        if network_id_of(address) != self.network_id:
            return None
        return address[12:]

    destination_6to4 = source_6to4


class PairMapper:
    """The mapping for one packet between two known endpoints (the agent's per-packet mapper).

    The agent already knows both ends of every packet it translates: the local node and the
    target it resolved. Either address may appear as source or destination (replies and the
    packets quoted in ICMP errors travel the other way); anything else is unmappable.
    """

    __slots__ = ("local4", "local6", "remote4", "remote6")

    def __init__(self, local4: bytes, local6: bytes, remote4: bytes, remote6: bytes) -> None:
        self.local4 = local4
        self.local6 = local6
        self.remote4 = remote4
        self.remote6 = remote6

    def source_4to6(self, address: bytes) -> bytes | None:
        if address == self.local4:
            return self.local6
        if address == self.remote4:
            return self.remote6
        return None

    destination_4to6 = source_4to6

    def source_6to4(self, address: bytes) -> bytes | None:
        if address == self.local6:
            return self.local4
        if address == self.remote6:
            return self.remote4
        return None

    destination_6to4 = source_6to4
