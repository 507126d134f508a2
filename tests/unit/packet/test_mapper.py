"""Address mappers: RFC 6052 IPv4-embedded IPv6 addresses and onm's substrate mapping."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onm.addressing import HostPrefix, Location, embed_ipv4
from onm.errors import InvalidInputError
from onm.packet.mapper import Rfc6052Mapper, SubstrateMapper

FAST = settings(max_examples=300, deadline=None)


def packed(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


# https://www.rfc-editor.org/rfc/rfc6052#section-2.4, Figure 2 ("Text Representation of
# IPv4-Embedded IPv6 Address Using Network-Specific Prefixes" and the well-known prefix):
# 192.0.2.33 embedded under each prefix length.
RFC6052_EXAMPLE_IPV4 = "192.0.2.33"
RFC6052_TABLE = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
    ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
]


@pytest.mark.parametrize(("prefix", "address"), RFC6052_TABLE)
def test_rfc6052_table_embeds(prefix: str, address: str) -> None:
    mapper = Rfc6052Mapper(prefix)
    assert mapper.embed(packed(RFC6052_EXAMPLE_IPV4)) == packed(address)


@pytest.mark.parametrize(("prefix", "address"), RFC6052_TABLE)
def test_rfc6052_table_extracts(prefix: str, address: str) -> None:
    mapper = Rfc6052Mapper(prefix)
    assert mapper.extract(packed(address)) == packed(RFC6052_EXAMPLE_IPV4)


def test_both_directions_and_roles_use_the_same_algorithm() -> None:
    """RFC 6052 section 2.3: the same algorithm for sources and destinations."""
    mapper = Rfc6052Mapper(ipaddress.IPv6Network("64:ff9b::/96"))
    v4, v6 = packed("192.0.2.33"), packed("64:ff9b::192.0.2.33")
    assert mapper.source_4to6(v4) == mapper.destination_4to6(v4) == v6
    assert mapper.source_6to4(v6) == mapper.destination_6to4(v6) == v4


@pytest.mark.parametrize(
    ("prefix", "address"),
    [
        ("64:ff9b::/96", "64:ff9c::192.0.2.33"),
        ("64:ff9b::/96", "2001:db8::192.0.2.33"),
        ("64:ff9b::/96", "::1"),
        ("64:ff9b::/96", "64:ff9b:1::c000:221"),  # differs inside the /96, octet 5
        ("2001:db8::/32", "2001:db9:c000:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:345:c0:2:2100:0"),
    ],
)
def test_address_outside_the_prefix_is_unmappable(prefix: str, address: str) -> None:
    assert Rfc6052Mapper(prefix).extract(packed(address)) is None


@pytest.mark.parametrize(
    "prefix",
    [
        "2001:db8::/33",  # not one of the six lengths of RFC 6052 section 2.2
        "2001:db8::/24",
        "2001:db8::/128",
        "::/0",
        "2001:db8:0:0:100::/96",  # bits 64..71 (the u octet) set (RFC 6052 section 2.2)
        "2001:db8::1/32",  # host bits set
        "not a prefix",
        "192.0.2.0/24",
    ],
)
def test_invalid_prefix_raises_naming_prefix(prefix: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        Rfc6052Mapper(prefix)
    assert raised.value.field == "prefix"


lengths = st.sampled_from([32, 40, 48, 56, 64, 96])


@st.composite
def prefixes(draw: st.DrawFn) -> str:
    length = draw(lengths)
    value = draw(st.integers(0, (1 << length) - 1)) << (128 - length)
    value &= ~(0xFF << 56)  # the u octet (bits 64..71) is zero
    return f"{ipaddress.IPv6Address(value)}/{length}"


@FAST
@given(prefix=prefixes(), v4=st.binary(min_size=4, max_size=4))
def test_extract_inverts_embed(prefix: str, v4: bytes) -> None:
    mapper = Rfc6052Mapper(prefix)
    v6 = mapper.embed(v4)
    network = ipaddress.IPv6Network(prefix)
    assert ipaddress.IPv6Address(v6) in network
    assert v6[8] == 0  # RFC 6052 2.2: the u octet
    if network.prefixlen < 96:
        assert v6[13:] == bytes(3)  # the suffix (octets 13..15 at least) is zero
    assert mapper.extract(v6) == v4


@FAST
@given(prefix=prefixes(), v6=st.binary(min_size=16, max_size=16))
def test_extract_of_any_address_is_none_or_four_octets(prefix: str, v6: bytes) -> None:
    mapper = Rfc6052Mapper(prefix)
    v4 = mapper.extract(v6)
    assert v4 is None or len(v4) == 4
    if v4 is not None:
        assert ipaddress.IPv6Address(v6) in ipaddress.IPv6Network(prefix)


# --- onm's substrate mapping (DESIGN.md section 2) -----------------------------------------------

HOST = HostPrefix(Location(locale=1, area=1, rack=2, node=1))
OTHER_HOST = HostPrefix(Location(locale=2, area=3, rack=4, node=5))
NODE = bytes((10, 0, 0, 1))


def test_substrate_6to4_takes_the_embedded_ipv4_of_this_network() -> None:
    mapper = SubstrateMapper(7, {})
    for host in (HOST, OTHER_HOST):  # which host the node lives on is not the mapper's check
        address = embed_ipv4(host, 7, NODE)
        assert mapper.source_6to4(address) == mapper.destination_6to4(address) == NODE


def test_substrate_address_of_another_network_is_unmappable() -> None:
    mapper = SubstrateMapper(7, {})
    for network_id in (0, 6, 8, 0xFFFFFF):
        address = embed_ipv4(HOST, network_id, NODE)
        assert mapper.source_6to4(address) is None
        assert mapper.destination_6to4(address) is None


def test_substrate_4to6_looks_up_locations() -> None:
    address = embed_ipv4(HOST, 7, NODE)
    mapper = SubstrateMapper(7, {NODE: address})
    assert mapper.source_4to6(NODE) == mapper.destination_4to6(NODE) == address
    assert mapper.source_4to6(bytes((10, 0, 0, 2))) is None


@FAST
@given(
    network_id=st.integers(0, 0xFFFFFF),
    other=st.integers(0, 0xFFFFFF),
    v4=st.binary(min_size=4, max_size=4),
)
def test_substrate_round_trip(network_id: int, other: int, v4: bytes) -> None:
    address = embed_ipv4(HOST, network_id, v4)
    mapper = SubstrateMapper(network_id, {v4: address})
    assert mapper.source_4to6(v4) == address
    assert mapper.source_6to4(address) == v4
    foreign = embed_ipv4(HOST, other, v4)
    assert (mapper.source_6to4(foreign) == v4) is (other == network_id)
