"""Tests for onm.addressing: the substrate address layout of US8595378 FIG. 2D (DESIGN.md s. 2)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onm.addressing import (
    ANYCAST_VERSION,
    DEFAULT_ORG_ID,
    LAYOUT,
    LAYOUT_VERSION,
    Distance,
    HostPrefix,
    Location,
    SubstrateAddress,
    anycast_index,
    anycast_prefix,
    distance,
    embed_ipv4,
    network_and_ipv4,
    network_id_of,
    split_address,
    steer,
    unsteered,
)
from onm.errors import AddressingError, InvalidInputError

RACK_HOST = HostPrefix(Location(locale=1, area=1, rack=2, node=1))

# --- the layout table ------------------------------------------------------------------------


def test_layout_tiles_128_bits_in_figure_order() -> None:
    """US8595378 FIG. 2D: fields follow each other with no gap or overlap, 128 bits in all."""
    expected = {
        "org_id": 32,
        "version": 2,
        "locale": 6,
        "area": 8,
        "rack": 8,
        "node": 8,
        "slot": 6,
        "deliver_to_slot": 1,
        "group": 1,
        "network_id": 24,
        "ipv4": 32,
    }
    assert {name: field.width for name, field in LAYOUT.items()} == expected
    next_bit = 0
    for field in LAYOUT.values():
        assert field.offset == next_bit
        next_bit += field.width
    assert next_bit == 128
    assert LAYOUT["slot"].offset == 64  # the host /64 ends where the slot starts


def test_defaults() -> None:
    assert DEFAULT_ORG_ID == 0xFD00_0000
    assert LAYOUT_VERSION == 0
    assert RACK_HOST.org_id == DEFAULT_ORG_ID
    assert RACK_HOST.version == LAYOUT_VERSION


# --- worked vectors, derived by hand from the layout -----------------------------------------

# Vector 1: default org, version 0, locale 1 area 1 rack 2 node 1, slot 3, network 0x000102,
# IPv4 10.0.0.3, U/L = I/G = 0.
#   bits   0..31  org id 0xfd000000                                 -> fd00:0000
#   bits  32..39  version 0b00, locale 0b000001 = 0b00000001 = 0x01
#   bits  40..63  area 0x01, rack 0x02, node 0x01                   -> 0101:0201
#   bits  64..71  slot 0b000011, U/L 0, I/G 0 = 0b00001100 = 0x0c
#   bits  72..95  network id 0x00 0x01 0x02                         -> 0c00:0102
#   bits 96..127  10.0.0.3 = 0x0a 0x00 0x00 0x03                    -> 0a00:0003
#   => fd00:0000:0101:0201:0c00:0102:0a00:0003
# Vector 2: every field at its maximum in org 2001:db8::/32: version 3 + locale 63 = 0xff,
# area/rack/node 0xff; slot 63 + U/L 1 + I/G 1 = 0xff; network 0xffffff; 255.255.255.255.
# Vector 3: version 1, locale 2 -> 0b01_000010 = 0x42; area 0x10, rack 0x20, node 0x30;
# slot 0 + U/L 0 + I/G 1 = 0x01; network 0xabcdef; 192.168.1.1 = c0 a8 01 01.
# Vector 4: vector 1's host; slot 1 + U/L 1 + I/G 0 = 0b00000110 = 0x06; network 0x000001;
# 10.1.2.3 = 0a 01 02 03.
VECTORS = [
    pytest.param(
        SubstrateAddress(RACK_HOST, 0x000102, IPv4Address("10.0.0.3"), slot=3),
        "fd00:0:101:201:c00:102:a00:3",
        id="rack-host",
    ),
    pytest.param(
        SubstrateAddress(
            HostPrefix(Location(63, 255, 255, 255), org_id=0x2001_0DB8, version=3),
            0xFF_FFFF,
            IPv4Address("255.255.255.255"),
            slot=63,
            deliver_to_slot=True,
            group=True,
        ),
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        id="all-ones",
    ),
    pytest.param(
        SubstrateAddress(
            HostPrefix(Location(2, 0x10, 0x20, 0x30), version=1),
            0xABCDEF,
            IPv4Address("192.168.1.1"),
            group=True,
        ),
        "fd00:0:4210:2030:1ab:cdef:c0a8:101",
        id="version-1-group",
    ),
    pytest.param(
        SubstrateAddress(RACK_HOST, 1, IPv4Address("10.1.2.3"), slot=1, deliver_to_slot=True),
        "fd00:0:101:201:600:1:a01:203",
        id="deliver-to-slot",
    ),
]


@pytest.mark.parametrize(("address", "text"), VECTORS)
def test_vector_encode_and_decode(address: SubstrateAddress, text: str) -> None:
    assert address.encode() == IPv6Address(text)
    assert str(address.encode()) == text
    assert address.packed == IPv6Address(text).packed
    assert SubstrateAddress.decode(text) == address
    assert SubstrateAddress.decode(IPv6Address(text)) == address
    assert SubstrateAddress.decode(IPv6Address(text).packed) == address


def test_host_prefix_vector() -> None:
    assert str(RACK_HOST) == "fd00:0:101:201::/64"
    assert RACK_HOST.network == IPv6Network("fd00:0:101:201::/64")
    assert RACK_HOST.value == 0xFD00_0000_0101_0201
    assert HostPrefix.from_network("fd00:0:101:201::/64") == RACK_HOST
    assert HostPrefix.from_value(0xFD00_0000_0101_0201) == RACK_HOST


@pytest.mark.parametrize(
    ("slot", "deliver_to_slot", "group", "byte8"),
    [
        (3, False, False, 0x0C),
        (3, True, False, 0x0E),
        (3, False, True, 0x0D),
        (3, True, True, 0x0F),
        (0, False, False, 0x00),
        (0, True, False, 0x02),
        (0, False, True, 0x01),
        (63, False, False, 0xFC),
    ],
)
def test_ul_and_ig_bits_in_byte_8(
    slot: int, deliver_to_slot: bool, group: bool, byte8: int
) -> None:
    """Bit 70 (U/L) is 0x02 and bit 71 (I/G) is 0x01 of byte 8; the slot is its top 6 bits."""
    address = SubstrateAddress(
        RACK_HOST,
        0x000102,
        IPv4Address("10.0.0.3"),
        slot=slot,
        deliver_to_slot=deliver_to_slot,
        group=group,
    )
    packed = address.packed
    assert packed[8] == byte8
    assert packed[:8] == bytes.fromhex("fd000000 01010201")
    assert packed[9:] == bytes.fromhex("000102 0a000003")
    decoded = SubstrateAddress.decode(packed)
    assert (decoded.slot, decoded.deliver_to_slot, decoded.group) == (slot, deliver_to_slot, group)


def test_fast_path_vector() -> None:
    packed = embed_ipv4(RACK_HOST.value, 0x000102, bytes([10, 0, 0, 3]), slot=3)
    assert packed == IPv6Address("fd00:0:101:201:c00:102:a00:3").packed
    assert split_address(packed) == (0xFD00_0000_0101_0201, 0x000102, b"\x0a\x00\x00\x03")
    assert network_id_of(packed) == 0x000102


# --- properties ------------------------------------------------------------------------------

locations = st.builds(
    Location,
    locale=st.integers(0, 63),
    area=st.integers(0, 255),
    rack=st.integers(0, 255),
    node=st.integers(0, 255),
)
prefixes = st.builds(
    HostPrefix, locations, org_id=st.integers(0, 2**32 - 1), version=st.integers(0, 3)
)
addresses = st.builds(
    SubstrateAddress,
    prefixes,
    network_id=st.integers(0, 2**24 - 1),
    ipv4=st.ip_addresses(v=4),
    slot=st.integers(0, 63),
    deliver_to_slot=st.booleans(),
    group=st.booleans(),
)


@given(addresses)
def test_decode_inverts_encode(address: SubstrateAddress) -> None:
    assert SubstrateAddress.decode(address.encode()) == address
    assert SubstrateAddress.decode(address.packed) == address
    assert SubstrateAddress.decode(str(address.encode())) == address


@given(addresses)
def test_packed_matches_encode(address: SubstrateAddress) -> None:
    assert address.packed == address.encode().packed


@given(st.binary(min_size=16, max_size=16))
def test_every_128_bit_value_decodes_and_reencodes(packed: bytes) -> None:
    assert SubstrateAddress.decode(packed).packed == packed


@given(addresses)
def test_embed_ipv4_agrees_with_packed(address: SubstrateAddress) -> None:
    flags = (address.slot, address.deliver_to_slot, address.group)
    for host in (address.host, address.host.value):
        assert embed_ipv4(host, address.network_id, address.ipv4.packed, *flags) == address.packed


@given(addresses)
def test_split_address_inverts_embed_ipv4(address: SubstrateAddress) -> None:
    packed = embed_ipv4(
        address.host,
        address.network_id,
        address.ipv4.packed,
        slot=address.slot,
        deliver_to_slot=address.deliver_to_slot,
        group=address.group,
    )
    assert split_address(packed) == (address.host.value, address.network_id, address.ipv4.packed)
    assert network_id_of(packed) == address.network_id
    assert network_and_ipv4(packed) == (address.network_id, address.ipv4.packed)


@given(prefixes)
def test_host_prefix_round_trips(prefix: HostPrefix) -> None:
    assert HostPrefix.from_network(prefix.network) == prefix
    assert HostPrefix.from_network(str(prefix)) == prefix
    assert HostPrefix.from_value(prefix.value) == prefix
    assert prefix.network.prefixlen == 64


@given(addresses)
def test_address_lies_in_its_host_prefix(address: SubstrateAddress) -> None:
    assert address.encode() in address.host.network


# --- validation ------------------------------------------------------------------------------

HOST_IP = IPv4Address("10.0.0.1")


def wrong(value: object) -> Any:
    """Hand a value of the wrong type past the type checker, to test the runtime check."""
    return value


FOUR = b"\x0a\x00\x00\x01"

BAD_INPUTS: list[tuple[str, Callable[[], object], str]] = [
    ("locale 64", lambda: Location(64, 0, 0, 0), "locale"),
    ("locale negative", lambda: Location(-1, 0, 0, 0), "locale"),
    ("locale bool", lambda: Location(True, 0, 0, 0), "locale"),
    ("locale str", lambda: Location(wrong("1"), 0, 0, 0), "locale"),
    ("area 256", lambda: Location(0, 256, 0, 0), "area"),
    ("rack 256", lambda: Location(0, 0, 256, 0), "rack"),
    ("rack negative", lambda: Location(0, 0, -1, 0), "rack"),
    ("node 256", lambda: Location(0, 0, 0, 256), "node"),
    ("node float", lambda: Location(0, 0, 0, wrong(1.0)), "node"),
    ("location not a Location", lambda: HostPrefix(wrong((1, 1, 2, 1))), "location"),
    ("org id 2**32", lambda: HostPrefix(RACK_HOST.location, org_id=2**32), "org_id"),
    ("org id negative", lambda: HostPrefix(RACK_HOST.location, org_id=-1), "org_id"),
    ("version 4", lambda: HostPrefix(RACK_HOST.location, version=4), "version"),
    ("version negative", lambda: HostPrefix(RACK_HOST.location, version=-1), "version"),
    ("version bool", lambda: HostPrefix(RACK_HOST.location, version=False), "version"),
    ("prefix value 2**64", lambda: HostPrefix.from_value(2**64), "prefix"),
    ("prefix /48", lambda: HostPrefix.from_network("fd00::/48"), "prefix"),
    ("prefix /48 object", lambda: HostPrefix.from_network(IPv6Network("fd00::/48")), "prefix"),
    ("prefix /128", lambda: HostPrefix.from_network("fd00::1"), "prefix"),
    ("prefix host bits set", lambda: HostPrefix.from_network("fd00:0:101:201::1/64"), "prefix"),
    ("prefix garbage", lambda: HostPrefix.from_network("garbage"), "prefix"),
    ("prefix IPv4", lambda: HostPrefix.from_network("10.0.0.0/24"), "prefix"),
    (
        "host not a HostPrefix",
        lambda: SubstrateAddress(wrong(RACK_HOST.location), 1, HOST_IP),
        "host",
    ),
    ("network id 2**24", lambda: SubstrateAddress(RACK_HOST, 2**24, HOST_IP), "network_id"),
    ("network id negative", lambda: SubstrateAddress(RACK_HOST, -1, HOST_IP), "network_id"),
    ("network id bool", lambda: SubstrateAddress(RACK_HOST, True, HOST_IP), "network_id"),
    ("ipv4 str", lambda: SubstrateAddress(RACK_HOST, 1, wrong("10.0.0.1")), "ipv4"),
    ("ipv4 is IPv6", lambda: SubstrateAddress(RACK_HOST, 1, wrong(IPv6Address("::1"))), "ipv4"),
    ("slot 64", lambda: SubstrateAddress(RACK_HOST, 1, HOST_IP, slot=64), "slot"),
    ("slot negative", lambda: SubstrateAddress(RACK_HOST, 1, HOST_IP, slot=-1), "slot"),
    (
        "U/L int",
        lambda: SubstrateAddress(RACK_HOST, 1, HOST_IP, deliver_to_slot=wrong(1)),
        "deliver_to_slot",
    ),
    ("I/G int", lambda: SubstrateAddress(RACK_HOST, 1, HOST_IP, group=wrong(0)), "group"),
    ("decode 15 bytes", lambda: SubstrateAddress.decode(bytes(15)), "address"),
    ("decode 17 bytes", lambda: SubstrateAddress.decode(bytes(17)), "address"),
    ("decode garbage", lambda: SubstrateAddress.decode("garbage"), "address"),
    ("decode IPv4 text", lambda: SubstrateAddress.decode("10.0.0.1"), "address"),
    ("decode int", lambda: SubstrateAddress.decode(wrong(42)), "address"),
    ("embed host 2**64", lambda: embed_ipv4(2**64, 1, FOUR), "host"),
    ("embed host negative", lambda: embed_ipv4(-1, 1, FOUR), "host"),
    ("embed network id 2**24", lambda: embed_ipv4(RACK_HOST, 2**24, FOUR), "network_id"),
    ("embed network id negative", lambda: embed_ipv4(RACK_HOST, -1, FOUR), "network_id"),
    ("embed ipv4 3 bytes", lambda: embed_ipv4(RACK_HOST, 1, FOUR[:3]), "ipv4"),
    ("embed ipv4 16 bytes", lambda: embed_ipv4(RACK_HOST, 1, bytes(16)), "ipv4"),
    ("embed slot 64", lambda: embed_ipv4(RACK_HOST, 1, FOUR, slot=64), "slot"),
    (
        "embed U/L int",
        lambda: embed_ipv4(RACK_HOST, 1, FOUR, deliver_to_slot=wrong(1)),
        "deliver_to_slot",
    ),
    ("embed I/G int", lambda: embed_ipv4(RACK_HOST, 1, FOUR, group=wrong(1)), "group"),
    ("split 15 bytes", lambda: split_address(bytes(15)), "address"),
    ("network id of 17 bytes", lambda: network_id_of(bytes(17)), "address"),
]


@pytest.mark.parametrize(
    ("make", "field"), [pytest.param(make, field, id=name) for name, make, field in BAD_INPUTS]
)
def test_bad_input_names_the_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(AddressingError) as caught:
        make()
    assert caught.value.field == field


def test_error_names_value_and_range() -> None:
    with pytest.raises(AddressingError) as caught:
        Location(64, 0, 0, 0)
    assert str(caught.value) == "locale: must be 0..63, got 64"
    with pytest.raises(AddressingError, match=r"^slot: must be 0\.\.63, got 64$"):
        SubstrateAddress(RACK_HOST, 1, HOST_IP, slot=64)
    with pytest.raises(AddressingError, match=r"^prefix: must be a /64, got /48$"):
        HostPrefix.from_network("fd00::/48")
    with pytest.raises(AddressingError, match=r"^network_id: must be an int in 0\.\.16777215"):
        SubstrateAddress(RACK_HOST, True, HOST_IP)


def test_addressing_error_is_a_400_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        Location(0, 0, 0, 256)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.http_status == 400


def test_boundaries_are_accepted() -> None:
    for value in (0, 2**24 - 1):
        assert SubstrateAddress(RACK_HOST, value, HOST_IP).network_id == value
    assert HostPrefix(Location(63, 255, 255, 255), org_id=2**32 - 1, version=3).value == 2**64 - 1
    assert HostPrefix(Location(0, 0, 0, 0), org_id=0).value == 0
    ipv6_object = ipaddress.ip_network("fd00:0:101:201::/64")
    assert isinstance(ipv6_object, IPv6Network)
    assert HostPrefix.from_network(ipv6_object) == RACK_HOST


# --- distance --------------------------------------------------------------------------------


def _host(locale: int, area: int, rack: int, node: int, **kwargs: int) -> HostPrefix:
    return HostPrefix(Location(locale, area, rack, node), **kwargs)


BASE = _host(1, 2, 3, 4)

DISTANCES = [
    pytest.param(_host(1, 2, 3, 4), Distance.SAME_NODE, id="same-host"),
    pytest.param(_host(1, 2, 3, 5), Distance.SAME_RACK, id="other-node"),
    pytest.param(_host(1, 2, 9, 4), Distance.SAME_AREA, id="other-rack-same-node-number"),
    pytest.param(_host(1, 2, 9, 9), Distance.SAME_AREA, id="other-rack"),
    pytest.param(_host(1, 9, 3, 4), Distance.SAME_LOCALE, id="other-area-same-rack-number"),
    pytest.param(_host(1, 9, 9, 9), Distance.SAME_LOCALE, id="other-area"),
    pytest.param(_host(9, 2, 3, 4), Distance.OTHER, id="other-locale-same-rest"),
    pytest.param(_host(9, 9, 9, 9), Distance.OTHER, id="other-locale"),
    pytest.param(_host(1, 2, 3, 4, org_id=0x2001_0DB8), Distance.OTHER, id="other-org"),
    pytest.param(_host(1, 2, 3, 4, version=1), Distance.OTHER, id="other-version"),
]


@pytest.mark.parametrize(("other", "expected"), DISTANCES)
def test_distance_table(other: HostPrefix, expected: Distance) -> None:
    assert distance(BASE, other) is expected
    assert distance(other, BASE) is expected


def test_distance_table_covers_every_value() -> None:
    assert {param.values[1] for param in DISTANCES} == set(Distance)


def test_distance_order() -> None:
    assert (
        Distance.SAME_NODE
        < Distance.SAME_RACK
        < Distance.SAME_AREA
        < Distance.SAME_LOCALE
        < Distance.OTHER
    )


# Draw from a small topology so that nearby hosts actually occur.
small_prefixes = st.builds(
    _host,
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 1),
    org_id=st.sampled_from([DEFAULT_ORG_ID, 0x2001_0DB8]),
    version=st.integers(0, 1),
)


@given(small_prefixes, small_prefixes)
def test_distance_is_symmetric(a: HostPrefix, b: HostPrefix) -> None:
    assert distance(a, b) == distance(b, a)


@given(prefixes)
def test_distance_to_self_is_same_node(a: HostPrefix) -> None:
    assert distance(a, a) is Distance.SAME_NODE


@given(small_prefixes, small_prefixes, small_prefixes)
def test_distance_is_hierarchical(a: HostPrefix, b: HostPrefix, c: HostPrefix) -> None:
    """Ultrametric: going through b never gets further than the larger of the two legs."""
    assert distance(a, c) <= max(distance(a, b), distance(b, c))


# --- steering and anycast /64s (edge pools in anycast mode) -------------------------------------
# Vectors worked by hand from the layout: host fd00:0:101:101::/64, network 0x000102, 10.0.0.3;
# byte 8 is slot << 2 | U/L << 1 | I/G, so slot 63 -> 0xfc, slot 1 -> 0x04, slot 1 + I/G -> 0x05.
NODE = "fd00:0:101:101:0:102:a00:3"


@pytest.mark.parametrize(
    ("address", "slot", "steered"),
    [
        (NODE, 63, "fd00:0:101:101:fc00:102:a00:3"),
        (NODE, 1, "fd00:0:101:101:400:102:a00:3"),
        ("fd00:0:101:101:100:102:a00:3", 1, "fd00:0:101:101:500:102:a00:3"),  # I/G kept
        ("fd00:0:101:101:1400:102:a00:3", 0, NODE),  # a legacy slot (5) replaced
    ],
)
def test_steer_replaces_only_the_slot(address: str, slot: int, steered: str) -> None:
    packed = IPv6Address(address).packed
    assert IPv6Address(steer(packed, slot)) == IPv6Address(steered)
    assert unsteered(steer(packed, slot)) == unsteered(packed)


def test_unsteered_zeroes_the_slot_only_with_ul_clear() -> None:
    assert IPv6Address(unsteered(IPv6Address("fd00:0:101:101:fc00:102:a00:3").packed)) == (
        IPv6Address(NODE)
    )
    pool_member = IPv6Address("fd00:0:101:101:600:102:a00:3").packed  # slot 1, U/L set
    assert unsteered(pool_member) == pool_member
    with pytest.raises(AddressingError, match="U/L"):
        steer(pool_member, 2)
    with pytest.raises(AddressingError, match="slot"):
        steer(IPv6Address(NODE).packed, 64)


@given(st.integers(0, 2**24 - 1), st.integers(0, 2**32 - 1), st.integers(0, 63), st.booleans())
def test_every_steered_variant_is_the_same_node(
    network_id: int, ipv4: int, slot: int, group: bool
) -> None:
    address = embed_ipv4(RACK_HOST, network_id, ipv4.to_bytes(4, "big"), group=group)
    steered = steer(address, slot)
    assert split_address(steered) == split_address(address)
    decoded = SubstrateAddress.decode(steered)
    assert (decoded.slot, decoded.group, decoded.deliver_to_slot) == (slot, group, False)


@pytest.mark.parametrize(
    ("index", "network"),
    [
        (0, "fd00:0:4000::/64"),  # bits 32..33 = version 1: 0b01_000000
        (1, "fd00:0:4000:1::/64"),
        (0x123456, "fd00:0:4012:3456::/64"),  # locale 0, area 0x12, rack 0x34, node 0x56
        (2**30 - 1, "fd00:0:7fff:ffff::/64"),
    ],
)
def test_anycast_prefixes_are_version_1_numbered(index: int, network: str) -> None:
    prefix = anycast_prefix(index)
    assert str(prefix) == network and prefix.version == ANYCAST_VERSION
    assert anycast_index(prefix) == index
    assert anycast_index(HostPrefix.from_network(network)) == index
    assert anycast_index(RACK_HOST) is None  # a host's /64 (version 0)
    with pytest.raises(AddressingError, match="index"):
        anycast_prefix(2**30)
