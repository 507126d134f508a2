"""Substrate addressing: the one owner of the IPv6 address layout (DESIGN.md section 2).

Every host owns a /64 of the IPv6 substrate; a node's substrate address inside it embeds the
node's virtual network id and virtual IPv4 address, so the destination host is found by routing on
the /64 and the destination node by (network id, IPv4) inside it. The layout follows seed
US8595378 FIG. 2D (topology example 274). `LAYOUT` is the single table of fields; encoding,
decoding, range checks and the per-packet fast path (`embed_ipv4`, `split_address`,
`network_and_ipv4`, `network_id_of`) are all derived from it. Bit 0 is the most significant bit:

    0          32  34     40     48     56     64     70  71  72           96          127
    +----------+---+------+------+------+------+------+---+---+------------+------------+
    |  org id  |ver|locale| area | rack | node | slot |U/L|I/G| network id |    IPv4    |
    +----------+---+------+------+------+------+------+---+---+------------+------------+
    '--------- host /64 (HostPrefix) ----------'--------- interface identifier ---------'

U/L set means "deliver to the node in `slot`" (routers, phantom routers); I/G set means a group
(broadcast or multicast) address. An ordinary node has U/L clear and slot 0: it is found by
(network id, IPv4), which is unique, so the 6-bit slot never limits how many nodes a host holds
(docs/addressing.md). Every 128-bit value decodes; only the types and ranges of the values given
to the constructors are checked, and violations raise `AddressingError(field, ...)`.

Two uses of the layout beyond a node's own address (edge pools in anycast mode, seed 1):

- *Steering*: with U/L clear the slot says nothing about the node (it is found by network id
  and IPv4), so a sender may put any of `STEERING_SLOTS` values there. Each is the same node's
  address, routed to the same host /64, but a substrate router hashing on addresses sees 64
  sources: this is how a sending agent steers an ECMP router's choice per flow (`steer`);
  receivers compare addresses `unsteered`. With U/L set the slot is meaningful and never steered.
- *Anycast /64s*: topology version `ANYCAST_VERSION` marks a /64 that is no host's but shared
  by an edge pool's gateways; its 30 topology bits number it (`anycast_prefix`), so it can never
  be a host's (version 0) /64.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple

from onm.errors import AddressingError

ADDRESS_BITS: Final = 128
ADDRESS_BYTES: Final = ADDRESS_BITS // 8
PREFIX_BITS: Final = 64

DEFAULT_ORG_ID: Final[int] = 0xFD00_0000
"""fd00:0000::/32, inside the IPv6 unique local range (RFC 4193)."""
LAYOUT_VERSION: Final[int] = 0
"""The 2-bit topology version we emit: 0 = locale/area/rack/node (US8595378 FIG. 2D, 274)."""


class BitField(NamedTuple):
    """One field of the substrate address, counted from bit 0 = most significant."""

    offset: int
    width: int

    @property
    def shift(self) -> int:
        """How far left the field's value is shifted in the 128-bit address."""
        return ADDRESS_BITS - self.offset - self.width

    @property
    def limit(self) -> int:
        """The largest value the field can hold."""
        return (1 << self.width) - 1


# US8595378 FIG. 2D: the 64-bit network prefix (org id + topology 274) and interface identifier.
LAYOUT: Final[Mapping[str, BitField]] = MappingProxyType(
    {
        "org_id": BitField(0, 32),
        "version": BitField(32, 2),
        "locale": BitField(34, 6),
        "area": BitField(40, 8),
        "rack": BitField(48, 8),
        "node": BitField(56, 8),
        "slot": BitField(64, 6),
        "deliver_to_slot": BitField(70, 1),  # U/L
        "group": BitField(71, 1),  # I/G
        "network_id": BitField(72, 24),
        "ipv4": BitField(96, 32),
    }
)
_LOCATION_FIELDS: Final = ("locale", "area", "rack", "node")
_PREFIX_FIELDS: Final = ("org_id", "version", *_LOCATION_FIELDS)
_HOST_LIMIT: Final = (1 << PREFIX_BITS) - 1

# Fast-path constants, derived from LAYOUT (never written out a second time).
_SLOT_SHIFT: Final = LAYOUT["slot"].shift
_UL_SHIFT: Final = LAYOUT["deliver_to_slot"].shift
_IG_SHIFT: Final = LAYOUT["group"].shift
_NETWORK_ID_SHIFT: Final = LAYOUT["network_id"].shift
_IPV4_SHIFT: Final = LAYOUT["ipv4"].shift


def _byte_slice(field: BitField) -> slice:
    assert field.offset % 8 == 0 and field.width % 8 == 0, field
    return slice(field.offset // 8, (field.offset + field.width) // 8)


_PREFIX_BYTES: Final = _byte_slice(BitField(0, PREFIX_BITS))
_NETWORK_ID_BYTES: Final = _byte_slice(LAYOUT["network_id"])
_IPV4_BYTES: Final = _byte_slice(LAYOUT["ipv4"])


def _check_int(field: str, value: object, limit: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AddressingError(field, f"must be an int in 0..{limit}, got {value!r}")
    if not 0 <= value <= limit:
        raise AddressingError(field, f"must be 0..{limit}, got {value}")


def _check_field(field: str, value: object) -> None:
    _check_int(field, value, LAYOUT[field].limit)


def _check_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise AddressingError(field, f"must be a bool, got {value!r}")


def _check_address_length(address: bytes) -> None:
    if len(address) != ADDRESS_BYTES:
        raise AddressingError("address", f"must be {ADDRESS_BYTES} bytes, got {len(address)}")


def _unpack(value: int, fields: Iterable[str]) -> dict[str, int]:
    return {name: (value >> LAYOUT[name].shift) & LAYOUT[name].limit for name in fields}


@dataclass(frozen=True, slots=True)
class Location:
    """Where a host sits in the physical topology (FIG. 2D, example 274)."""

    locale: int
    """Geographical locale, 0..63."""
    area: int
    """Area within the locale, 0..255."""
    rack: int
    """Rack within the area, 0..255."""
    node: int
    """Physical host within the rack, 0..255."""

    def __post_init__(self) -> None:
        for name in _LOCATION_FIELDS:
            _check_field(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class HostPrefix:
    """A host's /64: organisation id, topology version and location."""

    location: Location
    org_id: int = DEFAULT_ORG_ID
    """Upper 32 bits of every substrate address of the organisation."""
    version: int = LAYOUT_VERSION
    """2-bit topology version; says how the remaining 30 topology bits are read."""

    def __post_init__(self) -> None:
        if not isinstance(self.location, Location):
            raise AddressingError("location", f"must be a Location, got {self.location!r}")
        _check_field("org_id", self.org_id)
        _check_field("version", self.version)

    @property
    def value(self) -> int:
        """The upper 64 bits of every address in this /64, as an int."""
        loc = self.location
        values = (self.org_id, self.version, loc.locale, loc.area, loc.rack, loc.node)
        fields = zip(_PREFIX_FIELDS, values, strict=True)
        return sum(value << LAYOUT[name].shift for name, value in fields) >> PREFIX_BITS

    @property
    def network(self) -> ipaddress.IPv6Network:
        """The /64 itself."""
        return ipaddress.IPv6Network((self.value << PREFIX_BITS, PREFIX_BITS))

    @classmethod
    def from_value(cls, value: int) -> HostPrefix:
        """The prefix whose upper 64 bits are `value` (the inverse of `value`)."""
        _check_int("prefix", value, _HOST_LIMIT)
        fields = _unpack(value << PREFIX_BITS, _PREFIX_FIELDS)
        location = Location(*(fields[name] for name in _LOCATION_FIELDS))
        return cls(location, org_id=fields["org_id"], version=fields["version"])

    @classmethod
    def from_network(cls, network: ipaddress.IPv6Network | str) -> HostPrefix:
        """Parse a /64 such as ``"fd00:0:101:201::/64"``; host bits must be zero."""
        if isinstance(network, str):
            try:
                interface = ipaddress.IPv6Interface(network)
            except ValueError as exc:
                raise AddressingError("prefix", f"not an IPv6 network: {network!r}") from exc
            if interface.ip != interface.network.network_address:
                raise AddressingError("prefix", f"host bits set in {network!r}")
            network = interface.network
        elif not isinstance(network, ipaddress.IPv6Network):
            raise AddressingError("prefix", f"must be an IPv6Network or str, got {network!r}")
        if network.prefixlen != PREFIX_BITS:
            raise AddressingError("prefix", f"must be a /{PREFIX_BITS}, got /{network.prefixlen}")
        return cls.from_value(int(network.network_address) >> PREFIX_BITS)

    def __str__(self) -> str:
        return str(self.network)


class Distance(enum.IntEnum):
    """How far apart two hosts are; smaller is nearer ("nearest" pool selection)."""

    SAME_NODE = 0
    SAME_RACK = 1
    SAME_AREA = 2
    SAME_LOCALE = 3
    OTHER = 4


# Outermost level first: the distance when this level is the first one that differs.
_DISTANCE_IF_DIFFERENT: Final = (
    ("locale", Distance.OTHER),
    ("area", Distance.SAME_LOCALE),
    ("rack", Distance.SAME_AREA),
    ("node", Distance.SAME_RACK),
)


def distance(a: HostPrefix, b: HostPrefix) -> Distance:
    """Topological distance between two hosts; another org id or version is always OTHER."""
    if a.org_id != b.org_id or a.version != b.version:
        return Distance.OTHER
    for name, result in _DISTANCE_IF_DIFFERENT:
        if getattr(a.location, name) != getattr(b.location, name):
            return result
    return Distance.SAME_NODE


def _embed(
    host_value: int, network_id: int, ipv4: int, slot: int, deliver_to_slot: bool, group: bool
) -> int:
    return (
        (host_value << PREFIX_BITS)
        | (slot << _SLOT_SHIFT)
        | (deliver_to_slot << _UL_SHIFT)
        | (group << _IG_SHIFT)
        | (network_id << _NETWORK_ID_SHIFT)
        | (ipv4 << _IPV4_SHIFT)
    )


@dataclass(frozen=True, slots=True)
class SubstrateAddress:
    """A node's substrate address, decoded into its fields."""

    host: HostPrefix
    """The /64 of the host the node lives on."""
    network_id: int
    """Virtual network id, 0..2**24-1."""
    ipv4: ipaddress.IPv4Address
    """The node's (or the external destination's) IPv4 address inside that network."""
    slot: int = 0
    """0..63: the node to deliver to when `deliver_to_slot` is set; 0 for ordinary nodes."""
    deliver_to_slot: bool = False
    """U/L bit: deliver to the node in `slot` rather than by (network id, IPv4)."""
    group: bool = False
    """I/G bit: a broadcast or multicast address."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, HostPrefix):
            raise AddressingError("host", f"must be a HostPrefix, got {self.host!r}")
        _check_field("network_id", self.network_id)
        if not isinstance(self.ipv4, ipaddress.IPv4Address):
            raise AddressingError("ipv4", f"must be an IPv4Address, got {self.ipv4!r}")
        _check_field("slot", self.slot)
        _check_bool("deliver_to_slot", self.deliver_to_slot)
        _check_bool("group", self.group)

    def _as_int(self) -> int:
        flags = (self.slot, self.deliver_to_slot, self.group)
        return _embed(self.host.value, self.network_id, int(self.ipv4), *flags)

    def encode(self) -> ipaddress.IPv6Address:
        """The address as an `IPv6Address`."""
        return ipaddress.IPv6Address(self._as_int())

    @property
    def packed(self) -> bytes:
        """The address as 16 network-order bytes."""
        return self._as_int().to_bytes(ADDRESS_BYTES, "big")

    @classmethod
    def decode(cls, address: ipaddress.IPv6Address | bytes | str) -> SubstrateAddress:
        """Split an address (object, 16 packed bytes or text) into its fields."""
        if isinstance(address, ipaddress.IPv6Address):
            value = int(address)
        elif isinstance(address, bytes | bytearray | memoryview):
            _check_address_length(address)
            value = int.from_bytes(address, "big")
        elif isinstance(address, str):
            try:
                value = int(ipaddress.IPv6Address(address))
            except ValueError as exc:
                raise AddressingError("address", f"not an IPv6 address: {address!r}") from exc
        else:
            raise AddressingError("address", f"must be IPv6Address, bytes or str: {address!r}")
        fields = _unpack(value, ("network_id", "ipv4", "slot", "deliver_to_slot", "group"))
        return cls(
            host=HostPrefix.from_value(value >> PREFIX_BITS),
            network_id=fields["network_id"],
            ipv4=ipaddress.IPv4Address(fields["ipv4"]),
            slot=fields["slot"],
            deliver_to_slot=bool(fields["deliver_to_slot"]),
            group=bool(fields["group"]),
        )


def embed_ipv4(
    host: HostPrefix | int,
    network_id: int,
    ipv4: bytes,
    slot: int = 0,
    deliver_to_slot: bool = False,
    group: bool = False,
) -> bytes:
    """Per-packet fast path: the 16 packed bytes of an address; `host` may be a prefix value."""
    if isinstance(host, HostPrefix):
        host_value = host.value
    else:
        _check_int("host", host, _HOST_LIMIT)
        host_value = host
    _check_field("network_id", network_id)
    if len(ipv4) != 4:
        raise AddressingError("ipv4", f"must be 4 bytes, got {len(ipv4)}")
    _check_field("slot", slot)
    _check_bool("deliver_to_slot", deliver_to_slot)
    _check_bool("group", group)
    ipv4_value = int.from_bytes(ipv4, "big")
    value = _embed(host_value, network_id, ipv4_value, slot, deliver_to_slot, group)
    return value.to_bytes(ADDRESS_BYTES, "big")


def split_address(address: bytes) -> tuple[int, int, bytes]:
    """Per-packet fast path: (host prefix value, network id, packed IPv4) of 16 packed bytes."""
    if len(address) != ADDRESS_BYTES:  # inline: a call costs a tenth of this function
        _check_address_length(address)
    return (
        int.from_bytes(address[_PREFIX_BYTES], "big"),
        int.from_bytes(address[_NETWORK_ID_BYTES], "big"),
        bytes(address[_IPV4_BYTES]),
    )


def network_and_ipv4(
    address: bytes, _network: slice = _NETWORK_ID_BYTES, _ipv4: slice = _IPV4_BYTES
) -> tuple[int, bytes]:
    """Per-packet fast path of the receive check: (network id, packed IPv4) of 16 packed bytes
    (the slices are bound as defaults: a global lookup each costs more than the slicing)."""
    if len(address) != ADDRESS_BYTES:
        _check_address_length(address)
    return int.from_bytes(address[_network], "big"), address[_ipv4]


def network_id_of(address: bytes) -> int:
    """The virtual network id (bits 72..95) of 16 packed bytes."""
    _check_address_length(address)
    return int.from_bytes(address[_NETWORK_ID_BYTES], "big")


AGENT_NETWORK_ID: Final = 0
"""No virtual network has id 0 (the manager numbers them from 1): addresses with it belong to
the host's agent itself, such as the one gateways answer liveness probes on."""
_AGENT_IPV4: Final = b"\x00\x00\x00\x01"


def agent_address(host: HostPrefix | int) -> bytes:
    """The address of the agent of the host with /64 `host` (16 packed bytes): where edge
    gateways are probed and where the probing agent hears the answers."""
    return embed_ipv4(host, AGENT_NETWORK_ID, _AGENT_IPV4)


STEERING_SLOTS: Final = LAYOUT["slot"].limit + 1
"""The source variants a node's address has for steering (the 6 slot bits, U/L clear)."""
SLOT_BYTE: Final = LAYOUT["slot"].offset // 8
"""The octet of an address holding the slot and the U/L and I/G bits (the programs steer it)."""
UL_BIT: Final = 1 << (7 - LAYOUT["deliver_to_slot"].offset % 8)
SLOT_LOW: Final = 8 - LAYOUT["slot"].width
"""The slot's lowest bit in `SLOT_BYTE`."""
_FLAG_BITS: Final = (1 << SLOT_LOW) - 1
"""Byte 8 is slot (6 bits) | U/L | I/G: the two flag bits are its lowest."""


def steer(address: bytes, slot: int) -> bytes:
    """`address` (16 packed bytes, U/L clear) with `slot` in its slot bits: the same node's
    address, as another source to a router that hashes on addresses."""
    _check_address_length(address)
    _check_int("slot", slot, LAYOUT["slot"].limit)
    byte = address[SLOT_BYTE]
    if byte & UL_BIT:
        raise AddressingError("address", "has U/L set: its slot names a node and is not steered")
    steered = (slot << SLOT_LOW) | (byte & _FLAG_BITS)
    return b"".join((address[:SLOT_BYTE], bytes((steered,)), address[SLOT_BYTE + 1 :]))


def unsteered(address: bytes) -> bytes:
    """Per-packet: `address` with its slot bits zero when U/L is clear (every steered variant
    of one node's address gives one value), unchanged when U/L is set."""
    byte = address[SLOT_BYTE]
    if byte & UL_BIT or not byte >> SLOT_LOW:
        return address
    return b"".join((address[:SLOT_BYTE], bytes((byte & _FLAG_BITS,)), address[SLOT_BYTE + 1 :]))


ANYCAST_VERSION: Final = 1
"""Topology version of anycast /64s: the 30 bits after it number the /64 (no location)."""
ANYCAST_LIMIT: Final = (1 << sum(LAYOUT[name].width for name in _LOCATION_FIELDS)) - 1


def anycast_prefix(index: int, org_id: int = DEFAULT_ORG_ID) -> HostPrefix:
    """Anycast /64 number `index` (0..2**30-1) of organisation `org_id`."""
    _check_int("index", index, ANYCAST_LIMIT)
    widths = [LAYOUT[name].width for name in _LOCATION_FIELDS]
    values, rest = [], index
    for width in reversed(widths):
        values.append(rest & ((1 << width) - 1))
        rest >>= width
    return HostPrefix(Location(*reversed(values)), org_id=org_id, version=ANYCAST_VERSION)


def anycast_index(prefix: HostPrefix) -> int | None:
    """The number of anycast /64 `prefix` (the inverse of `anycast_prefix`); None for a host's."""
    if prefix.version != ANYCAST_VERSION:
        return None
    index = 0
    for name in _LOCATION_FIELDS:
        index = (index << LAYOUT[name].width) | getattr(prefix.location, name)
    return index
