"""UDP (RFC 768) over IPv4 and IPv6."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from onm.packet import udp
from onm.packet.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.udp import UdpDatagram, UdpHeader

FAST = settings(max_examples=200, deadline=None)
SCAPY = settings(max_examples=40, deadline=None)

SRC4, DST4 = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("fd000000000000000000000000000002")

ports = st.integers(min_value=0, max_value=0xFFFF)
payloads = st.binary(max_size=64)
addresses = st.one_of(
    st.tuples(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4)),
    st.tuples(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16)),
)


def _checksum_field(wire: bytes) -> int:
    return int(struct.unpack_from("!H", wire, udp.CHECKSUM_OFFSET)[0])


def _verifies(src: bytes, dst: bytes, wire: bytes) -> bool:
    """The receiver's check: the sum over pseudo-header and datagram is -0 (RFC 768)."""
    pseudo = (pseudo_header_v4 if len(src) == 4 else pseudo_header_v6)(
        src, dst, IpProtocol.UDP, len(wire)
    )
    return internet_checksum(wire, pseudo) == 0


def _scapy(src: bytes, dst: bytes, wire: bytes) -> UDP:
    """scapy's view of `wire` carried between `src` and `dst`."""
    outer: IP | IPv6
    if len(src) == 4:
        outer = IP(src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)))
    else:
        outer = IPv6(src=str(ipaddress.IPv6Address(src)), dst=str(ipaddress.IPv6Address(dst)))
    return (outer / UDP(wire))[UDP]


def _scapy_recomputed_checksum(src: bytes, dst: bytes, wire: bytes) -> int:
    layer = _scapy(src, dst, wire)
    packet = layer.underlayer
    del layer.chksum
    return int(packet.__class__(bytes(packet))[UDP].chksum)


# --- scapy both ways -----------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(SRC4, DST4), (SRC6, DST6)], ids=["v4", "v6"])
def test_built_datagram_parses_in_scapy(src: bytes, dst: bytes) -> None:
    wire = udp.build(UdpDatagram(UdpHeader(5353, 53), b"query?"), src, dst)
    layer = _scapy(src, dst, wire)
    assert (layer.sport, layer.dport, layer.len) == (5353, 53, 14)
    assert bytes(layer.payload) == b"query?"
    assert layer.chksum == _scapy_recomputed_checksum(src, dst, wire)


def test_scapy_v4_datagram_parses() -> None:
    wire = bytes(IP(src="192.0.2.1", dst="198.51.100.2") / UDP(sport=1, dport=65535) / b"abc")
    datagram = udp.parse(wire[20:])
    assert isinstance(datagram, UdpDatagram)
    assert datagram.header.src_port == 1
    assert datagram.header.dst_port == 65535
    assert datagram.header.length == 11
    assert datagram.payload == b"abc"
    assert datagram.header.checksum == _checksum_field(wire[20:])
    assert udp.build(datagram, SRC4, DST4) == wire[20:]


def test_scapy_v6_datagram_parses() -> None:
    wire = bytes(IPv6(src="2001:db8::1", dst="fd00::2") / UDP(sport=546, dport=547) / b"dhcp")
    datagram = udp.parse(wire[40:])
    assert isinstance(datagram, UdpDatagram)
    assert (datagram.header.src_port, datagram.header.dst_port) == (546, 547)
    assert udp.build(datagram, SRC6, DST6) == wire[40:]
    assert udp.checksum_v6(SRC6, DST6, wire[40:46] + b"\x00\x00" + wire[48:]) == (
        datagram.header.checksum
    )


def _payload_summing_to_minus_zero(src: bytes, dst: bytes) -> bytes:
    """A payload whose datagram's ones' complement sum is 0xFFFF: its checksum computes to 0."""
    head = b"zero checksum!"
    probe = udp.build(UdpDatagram(UdpHeader(1234, 4321), head + b"\x00\x00"), src, dst, False)
    pseudo = (pseudo_header_v4 if len(src) == 4 else pseudo_header_v6)(
        src, dst, IpProtocol.UDP, len(probe)
    )
    return head + struct.pack("!H", internet_checksum(probe, pseudo))


@pytest.mark.parametrize(("src", "dst"), [(SRC4, DST4), (SRC6, DST6)], ids=["v4", "v6"])
def test_computed_zero_is_sent_as_all_ones(src: bytes, dst: bytes) -> None:
    # RFC 768: "If the computed checksum is zero, it is transmitted as all ones"; zero on the
    # wire means "no checksum" (and is not allowed over IPv6, RFC 8200 section 8.1).
    payload = _payload_summing_to_minus_zero(src, dst)
    wire = udp.build(UdpDatagram(UdpHeader(1234, 4321), payload), src, dst)
    assert _checksum_field(wire) == 0xFFFF
    assert _verifies(src, dst, wire)
    assert _scapy_recomputed_checksum(src, dst, wire) == 0xFFFF


def test_checksum_functions_apply_the_all_ones_rule() -> None:
    payload = _payload_summing_to_minus_zero(SRC4, DST4)
    segment = udp.build(UdpDatagram(UdpHeader(1234, 4321), payload), SRC4, DST4, False)
    assert udp.checksum_v4(SRC4, DST4, segment) == 0xFFFF
    payload = _payload_summing_to_minus_zero(SRC6, DST6)
    segment = udp.build(UdpDatagram(UdpHeader(1234, 4321), payload), SRC6, DST6, False)
    assert udp.checksum_v6(SRC6, DST6, segment) == 0xFFFF


def test_without_checksum() -> None:
    wire = udp.build(UdpDatagram(UdpHeader(7, 9), b"x"), SRC4, DST4, with_checksum=False)
    assert wire == bytes.fromhex("0007 0009 0009 0000") + b"x"
    datagram = udp.parse(wire)
    assert isinstance(datagram, UdpDatagram)
    assert datagram.header.checksum == 0


def test_length_field_bounds_the_payload() -> None:
    wire = udp.build(UdpDatagram(UdpHeader(1, 2), b"abcd"), SRC4, DST4)
    datagram = udp.parse(wire + b"trailing")
    assert isinstance(datagram, UdpDatagram)
    assert datagram.payload == b"abcd"
    shorter = wire[:4] + struct.pack("!H", 10) + wire[6:]
    datagram = udp.parse(shorter)
    assert isinstance(datagram, UdpDatagram)
    assert datagram.payload == b"ab"


def test_header_fields_in_build_are_recomputed() -> None:
    datagram = UdpDatagram(UdpHeader(1, 2, length=999, checksum=0xABCD), b"")
    assert udp.build(datagram, SRC4, DST4, with_checksum=False) == bytes.fromhex("0001000200080000")


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.L4_TRUNCATED),
        (bytes.fromhex("00010002000800"), DropReason.L4_TRUNCATED),  # 7 octets
        (bytes.fromhex("0001000200070000"), DropReason.L4_TRUNCATED),  # length 7 < 8
        (bytes.fromhex("0001000200000000"), DropReason.L4_TRUNCATED),  # length 0 (jumbogram)
        (bytes.fromhex("00010002000a0000") + b"x", DropReason.L4_TRUNCATED),  # 10 > 9 given
    ],
    ids=["empty", "short", "length-7", "length-0", "length-beyond-data"],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert udp.parse(wire) == reason


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(sport=ports, dport=ports, payload=payloads, pair=addresses, with_checksum=st.booleans())
def test_parse_build_round_trip(
    sport: int, dport: int, payload: bytes, pair: tuple[bytes, bytes], with_checksum: bool
) -> None:
    src, dst = pair
    wire = udp.build(UdpDatagram(UdpHeader(sport, dport), payload), src, dst, with_checksum)
    csum = _checksum_field(wire)
    assert udp.parse(wire) == UdpDatagram(UdpHeader(sport, dport, len(wire), csum), payload)
    if with_checksum:
        assert csum != 0
        assert _verifies(src, dst, wire)
    else:
        assert csum == 0


@SCAPY
@given(sport=ports, dport=ports, payload=payloads, pair=addresses)
def test_checksum_agrees_with_scapy(
    sport: int, dport: int, payload: bytes, pair: tuple[bytes, bytes]
) -> None:
    src, dst = pair
    wire = udp.build(UdpDatagram(UdpHeader(sport, dport), payload), src, dst)
    assert _checksum_field(wire) == _scapy_recomputed_checksum(src, dst, wire)


@FAST
@given(data=st.binary(max_size=40))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = udp.parse(data)
    if isinstance(result, UdpDatagram):
        assert len(result.payload) == result.header.length - udp.HEADER_LENGTH
    else:
        assert result == DropReason.L4_TRUNCATED


@FAST
@given(sport=ports, dport=ports, payload=payloads)
def test_every_truncation_is_truncated(sport: int, dport: int, payload: bytes) -> None:
    wire = udp.build(UdpDatagram(UdpHeader(sport, dport), payload), SRC4, DST4)
    for cut in range(len(wire)):
        assert udp.parse(wire[:cut]) == DropReason.L4_TRUNCATED
