"""IPv6 headers (RFC 8200) and the walk over extension headers."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH

from onm.packet import ipv6, udp
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.ipv6 import FragmentHeader, IPv6Header, IPv6Packet, UpperLayer

FAST = settings(max_examples=200, deadline=None)

SRC = bytes.fromhex("20010db8000000000000000000000001")
DST = bytes.fromhex("20010db8000000000000000000000002")

ipv6s = st.binary(min_size=16, max_size=16)
headers = st.builds(
    IPv6Header,
    src=ipv6s,
    dst=ipv6s,
    next_header=st.integers(min_value=0, max_value=255),
    hop_limit=st.integers(min_value=0, max_value=255),
    traffic_class=st.integers(min_value=0, max_value=255),
    flow_label=st.integers(min_value=0, max_value=0xFFFFF),
)
payloads = st.binary(max_size=64)
fragments = st.builds(
    FragmentHeader,
    next_header=st.integers(min_value=0, max_value=255),
    offset=st.integers(min_value=0, max_value=0x1FFF),
    more=st.booleans(),
    identification=st.integers(min_value=0, max_value=0xFFFFFFFF),
)


def _scapy_payload(packet: IPv6) -> tuple[int, bytes]:
    """(next header, payload) of a scapy-built datagram, as onm's parser sees them."""
    parsed = ipv6.parse(bytes(packet))
    assert isinstance(parsed, IPv6Packet)
    return parsed.header.next_header, parsed.payload


# --- Fixed header --------------------------------------------------------------------------------

# Hand-assembled from RFC 8200 section 3: version 6, traffic class 0xb8 (EF), flow label
# 0x12345, payload length 8, next header 17, hop limit 64, 2001:db8::1 -> 2001:db8::2.
KNOWN = bytes.fromhex("6b812345 0008 11 40") + SRC + DST + bytes(8)


def test_known_header() -> None:
    packet = ipv6.parse(KNOWN)
    assert packet == IPv6Packet(
        IPv6Header(SRC, DST, IpProtocol.UDP, 64, 0xB8, 0x12345, 8), bytes(8)
    )
    assert ipv6.build(packet.header, packet.payload) == KNOWN
    parsed = IPv6(KNOWN)
    assert (parsed.tc, parsed.fl, parsed.plen, parsed.nh, parsed.hlim) == (0xB8, 0x12345, 8, 17, 64)


def test_scapy_header_parses() -> None:
    wire = bytes(
        IPv6(src="2001:db8::1", dst="fd00::7", tc=3, fl=0xFFFFF, hlim=1, nh=59) / (b"z" * 5)
    )
    packet = ipv6.parse(wire + b"padding")
    assert isinstance(packet, IPv6Packet)
    assert packet.header == IPv6Header(
        SRC, bytes.fromhex("fd000000000000000000000000000007"), 59, 1, 3, 0xFFFFF, 5
    )
    assert packet.payload == b"z" * 5


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.IPV6_TRUNCATED),
        (KNOWN[:39], DropReason.IPV6_TRUNCATED),
        (b"\x40" + KNOWN[1:], DropReason.IPV6_BAD_VERSION),
        (b"\x00" + KNOWN[1:], DropReason.IPV6_BAD_VERSION),
        (b"\xfb" + KNOWN[1:], DropReason.IPV6_BAD_VERSION),
        (KNOWN[:47], DropReason.IPV6_TRUNCATED),  # payload length 8, 7 octets given
        (KNOWN[:4] + b"\xff\xff" + KNOWN[6:], DropReason.IPV6_TRUNCATED),
    ],
    ids=["empty", "short", "version-4", "version-0", "version-15", "payload-cut", "plen-huge"],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert ipv6.parse(wire) == reason


def test_allow_truncated_keeps_what_is_there() -> None:
    # RFC 4443 section 2.4 (c): ICMPv6 errors quote as much of the datagram as fits.
    packet = ipv6.parse(KNOWN[:45], allow_truncated=True)
    assert isinstance(packet, IPv6Packet)
    assert packet.header.payload_length == 8
    assert packet.payload == bytes(5)
    assert ipv6.parse(KNOWN[:39], allow_truncated=True) == DropReason.IPV6_TRUNCATED
    assert ipv6.parse(b"\x40" + KNOWN[1:45], allow_truncated=True) == DropReason.IPV6_BAD_VERSION


def test_pack_header_matches_build_header() -> None:
    header = IPv6Header(SRC, DST, 58, 255, 0x20, 0xABCDE)
    assert ipv6.pack_header(0x20, 0xABCDE, 99, 58, 255, SRC, DST) == ipv6.build_header(header, 99)


# --- Extension headers with scapy ----------------------------------------------------------------


def test_chain_with_every_kind_to_udp() -> None:
    nh, payload = _scapy_payload(
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting(addresses=["2001:db8::3"], segleft=0)
        / IPv6ExtHdrFragment(offset=0, m=1, id=0x1234)
        / UDP(sport=1000, dport=2000)
        / b"data"
    )
    assert nh == IpProtocol.HOPOPTS
    upper = ipv6.find_upper_layer(nh, payload)
    # 8 (Hop-by-Hop) + 8 (Destination Options) + 24 (Routing, one address) + 8 (Fragment).
    assert upper == UpperLayer(
        protocol=IpProtocol.UDP,
        offset=48,
        fragment=FragmentHeader(IpProtocol.UDP, 0, True, 0x1234),
        fragment_at=40,
        segments_left_at=None,
    )
    datagram = udp.parse(payload[upper.offset :])
    assert isinstance(datagram, udp.UdpDatagram)
    assert (datagram.header.src_port, datagram.header.dst_port) == (1000, 2000)
    assert datagram.payload == b"data"


def test_routing_header_with_segments_left() -> None:
    nh, payload = _scapy_payload(
        IPv6()
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::3", "2001:db8::4"], segleft=2)
        / UDP()
    )
    upper = ipv6.find_upper_layer(nh, payload)
    assert isinstance(upper, UpperLayer)
    assert upper.protocol == IpProtocol.UDP
    assert upper.offset == 8 + 40
    assert upper.segments_left_at == 8 + 3
    assert payload[upper.segments_left_at] == 2
    assert upper.fragment is None
    assert upper.fragment_at is None


def test_routing_header_with_segments_left_zero_is_not_reported() -> None:
    nh, payload = _scapy_payload(
        IPv6() / IPv6ExtHdrRouting(addresses=["2001:db8::3"], segleft=0) / UDP()
    )
    assert ipv6.find_upper_layer(nh, payload) == UpperLayer(IpProtocol.UDP, 24)


def test_non_first_fragment_stops_the_walk() -> None:
    # What follows a non-first fragment's header is data, even if it looks like a header.
    nh, payload = _scapy_payload(
        IPv6()
        / IPv6ExtHdrFragment(nh=IpProtocol.DSTOPTS, offset=185, m=0, id=7)
        / IPv6ExtHdrDestOpt()
        / UDP()
    )
    assert nh == IpProtocol.FRAGMENT
    assert ipv6.find_upper_layer(nh, payload) == UpperLayer(
        IpProtocol.DSTOPTS, 8, FragmentHeader(IpProtocol.DSTOPTS, 185, False, 7), 0
    )


def test_first_fragment_continues_the_walk() -> None:
    nh, payload = _scapy_payload(
        IPv6() / IPv6ExtHdrFragment(offset=0, m=1, id=9) / IPv6ExtHdrDestOpt() / UDP()
    )
    upper = ipv6.find_upper_layer(nh, payload)
    assert isinstance(upper, UpperLayer)
    assert (upper.protocol, upper.offset, upper.fragment_at) == (IpProtocol.UDP, 16, 0)


def test_authentication_header_counts_in_4_octet_units() -> None:
    # RFC 4302 section 2.2: Payload Len is the AH length in 32-bit words minus 2.
    nh, payload = _scapy_payload(
        IPv6() / AH(nh=IpProtocol.TCP, payloadlen=4, spi=1, seq=1, icv=bytes(12)) / (b"t" * 20)
    )
    assert nh == IpProtocol.AH
    assert ipv6.find_upper_layer(nh, payload) == UpperLayer(IpProtocol.TCP, 24)


@pytest.mark.parametrize("protocol", [IpProtocol.ESP, IpProtocol.NONXT, IpProtocol.ICMPV6, 253])
def test_walk_stops_at_non_extension(protocol: int) -> None:
    assert ipv6.find_upper_layer(protocol, bytes(16)) == UpperLayer(protocol, 0)


def test_empty_payload() -> None:
    assert ipv6.find_upper_layer(IpProtocol.TCP, b"") == UpperLayer(IpProtocol.TCP, 0)


TWO_FRAGMENTS = ipv6.build_fragment_header(
    FragmentHeader(IpProtocol.FRAGMENT, 0, True, 1)
) + ipv6.build_fragment_header(FragmentHeader(IpProtocol.UDP, 0, True, 1))


@pytest.mark.parametrize(
    ("next_header", "payload", "reason"),
    [
        (IpProtocol.FRAGMENT, TWO_FRAGMENTS + bytes(8), DropReason.IPV6_BAD_EXTENSION_HEADER),
        (IpProtocol.FRAGMENT, bytes(7), DropReason.IPV6_TRUNCATED),
        (IpProtocol.HOPOPTS, b"\x11", DropReason.IPV6_TRUNCATED),  # no length octet
        (IpProtocol.HOPOPTS, b"\x11\x00" + bytes(5), DropReason.IPV6_TRUNCATED),
        (IpProtocol.DSTOPTS, b"\x11\x02" + bytes(14), DropReason.IPV6_TRUNCATED),  # 24 > 16
        (IpProtocol.ROUTING, b"\x11\x02\x00\x01" + bytes(19), DropReason.IPV6_TRUNCATED),
        (IpProtocol.AH, b"\x06\x04" + bytes(18), DropReason.IPV6_TRUNCATED),  # 24 > 20
        (IpProtocol.HOPOPTS, b"\x2c\x00" + bytes(6) + bytes(4), DropReason.IPV6_TRUNCATED),
        (IpProtocol.HOPOPTS, b"\x00\x00" + bytes(6), DropReason.IPV6_TRUNCATED),
    ],
    ids=[
        "two-fragment-headers",
        "fragment-cut",
        "no-length",
        "hop-by-hop-cut",
        "dest-opts-overrun",
        "routing-overrun",
        "ah-overrun",
        "fragment-after-hbh-cut",
        "hbh-then-hbh-missing",
    ],
)
def test_extension_header_drop_reasons(
    next_header: int, payload: bytes, reason: DropReason
) -> None:
    assert ipv6.find_upper_layer(next_header, payload) == reason


def test_fragment_header_agrees_with_scapy() -> None:
    fragment = FragmentHeader(IpProtocol.TCP, 0x1ABC, True, 0xDEADBEEF)
    parsed = IPv6ExtHdrFragment(ipv6.build_fragment_header(fragment))
    assert (parsed.nh, parsed.offset, parsed.m, parsed.id) == (6, 0x1ABC, 1, 0xDEADBEEF)
    wire = bytes(IPv6ExtHdrFragment(nh=17, offset=3, m=0, id=42, res1=0xFF, res2=3))
    # Reserved bits are ignored (RFC 8200 section 4.5).
    assert ipv6.parse_fragment_header(wire) == FragmentHeader(17, 3, False, 42)
    assert ipv6.parse_fragment_header(b"xx" + wire, 2) == FragmentHeader(17, 3, False, 42)
    assert ipv6.parse_fragment_header(wire[:7]) == DropReason.IPV6_TRUNCATED


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(header=headers, payload=payloads)
def test_parse_build_round_trip(header: IPv6Header, payload: bytes) -> None:
    wire = ipv6.build(header, payload)
    expected = dataclasses.replace(header, payload_length=len(payload))
    assert ipv6.parse(wire) == IPv6Packet(expected, payload)
    assert ipv6.parse(wire + b"trailer") == IPv6Packet(expected, payload)


@FAST
@given(data=st.binary(max_size=80))
def test_random_bytes_never_raise(data: bytes) -> None:
    for allow in (False, True):
        result = ipv6.parse(data, allow_truncated=allow)
        if isinstance(result, IPv6Packet):
            assert ipv6.build(result.header, result.payload) == data[: 40 + len(result.payload)]
        else:
            assert result in (DropReason.IPV6_TRUNCATED, DropReason.IPV6_BAD_VERSION)


@FAST
@given(header=headers, payload=payloads)
def test_every_truncation_is_truncated(header: IPv6Header, payload: bytes) -> None:
    wire = ipv6.build(header, payload)
    for cut in range(len(wire)):
        assert ipv6.parse(wire[:cut]) == DropReason.IPV6_TRUNCATED
        allowed = ipv6.parse(wire[:cut], allow_truncated=True)
        if cut < ipv6.HEADER_LENGTH:
            assert allowed == DropReason.IPV6_TRUNCATED
        else:
            assert isinstance(allowed, IPv6Packet)
            assert allowed.payload == payload[: cut - ipv6.HEADER_LENGTH]


@FAST
@given(fragment=fragments)
def test_fragment_header_round_trip(fragment: FragmentHeader) -> None:
    wire = ipv6.build_fragment_header(fragment)
    assert len(wire) == ipv6.FRAGMENT_HEADER_LENGTH
    assert ipv6.parse_fragment_header(wire) == fragment


@FAST
@given(
    next_header=st.sampled_from([0, 43, 44, 51, 60, 135, 139, 140, 6, 17, 58, 59]),
    payload=st.binary(max_size=80),
)
def test_walk_over_random_bytes_never_raises(next_header: int, payload: bytes) -> None:
    result = ipv6.find_upper_layer(next_header, payload)
    if isinstance(result, UpperLayer):
        assert 0 <= result.offset <= len(payload)
    else:
        assert result in (DropReason.IPV6_TRUNCATED, DropReason.IPV6_BAD_EXTENSION_HEADER)


# A generated chain of extension headers, with the answer the walk must give computed from the
# chain description rather than from the bytes.

_GENERIC = [IpProtocol.HOPOPTS, IpProtocol.DSTOPTS, IpProtocol.ROUTING, IpProtocol.MOBILITY]


@st.composite
def chains(draw: st.DrawFn) -> tuple[int, bytes, UpperLayer | DropReason]:
    """(first next header, extension header octets, the walk's expected result)."""
    kinds = draw(
        st.lists(st.sampled_from([*_GENERIC, IpProtocol.AH, IpProtocol.FRAGMENT]), max_size=5)
    )
    upper = draw(st.sampled_from([IpProtocol.TCP, IpProtocol.UDP, IpProtocol.ICMPV6, 59]))
    next_headers = [*kinds[1:], upper]
    payload = b""
    fragment: FragmentHeader | None = None
    fragment_at: int | None = None
    segments_left_at: int | None = None
    expected: UpperLayer | DropReason | None = None
    for kind, nh in zip(kinds, next_headers[: len(kinds)], strict=True):
        at = len(payload)
        if kind == IpProtocol.FRAGMENT:
            header = FragmentHeader(
                nh,
                draw(st.sampled_from([0, 0, 1, 0x1FFF])),
                draw(st.booleans()),
                draw(st.integers(0, 0xFFFFFFFF)),
            )
            payload += ipv6.build_fragment_header(header)
            if expected is None and fragment is not None:
                expected = DropReason.IPV6_BAD_EXTENSION_HEADER
            if expected is None:
                fragment, fragment_at = header, at
                if header.offset != 0:
                    expected = UpperLayer(nh, len(payload), fragment, fragment_at, segments_left_at)
        elif kind == IpProtocol.AH:
            units = draw(st.integers(min_value=1, max_value=6))
            payload += bytes([nh, units]) + draw(
                st.binary(min_size=(units + 2) * 4 - 2, max_size=(units + 2) * 4 - 2)
            )
        else:
            units = draw(st.integers(min_value=0, max_value=3))
            body = bytearray(draw(st.binary(min_size=(units + 1) * 8, max_size=(units + 1) * 8)))
            body[0:2] = bytes([nh, units])
            if kind == IpProtocol.ROUTING and body[3] != 0 and expected is None:
                segments_left_at = at + 3
            payload += bytes(body)
    if expected is None:
        expected = UpperLayer(upper, len(payload), fragment, fragment_at, segments_left_at)
    first = kinds[0] if kinds else upper
    return first, payload, expected


@FAST
@given(chain=chains(), data=st.binary(max_size=16))
def test_walk_over_generated_chains(
    chain: tuple[int, bytes, UpperLayer | DropReason], data: bytes
) -> None:
    first, headers_bytes, expected = chain
    assert ipv6.find_upper_layer(first, headers_bytes + data) == expected


@FAST
@given(chain=chains())
def test_every_truncation_of_a_chain_is_handled(
    chain: tuple[int, bytes, UpperLayer | DropReason],
) -> None:
    first, headers_bytes, expected = chain
    for cut in range(len(headers_bytes)):
        result = ipv6.find_upper_layer(first, headers_bytes[:cut])
        if isinstance(expected, UpperLayer) and expected.offset <= cut:
            assert result == expected
        else:
            assert isinstance(result, DropReason)
