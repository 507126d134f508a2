"""TCP (RFC 9293 section 3.1) headers over IPv4 and IPv6."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.layers.inet6 import IPv6, in6_chksum

from onm.errors import InvalidInputError
from onm.packet import tcp
from onm.packet.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.tcp import TcpFlag, TcpHeader, TcpSegment

FAST = settings(max_examples=200, deadline=None)
SCAPY = settings(max_examples=40, deadline=None)

SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 3])
SRC6 = bytes.fromhex("fd00000000000001000000000a000001")
DST6 = bytes.fromhex("fd00000000000002000000000a000003")

u16 = st.integers(min_value=0, max_value=0xFFFF)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
wire_options = st.integers(min_value=0, max_value=10).flatmap(
    lambda n: st.binary(min_size=4 * n, max_size=4 * n)
)
tcp_headers = st.builds(
    TcpHeader,
    src_port=u16,
    dst_port=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(min_value=0, max_value=0xFF),
    window=u16,
    urgent=u16,
    options=wire_options,
)
payloads = st.binary(max_size=64)
addresses = st.one_of(
    st.tuples(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4)),
    st.tuples(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16)),
)

# RFC 9293 section 3.2 / RFC 7323 / RFC 2018: MSS, SACK permitted, Timestamps, NOP, Window Scale.
SCAPY_OPTIONS = [
    ("MSS", 1460),
    ("SAckOK", b""),
    ("Timestamp", (0x01020304, 0)),
    ("NOP", None),
    ("WScale", 7),
]


def _checksum_field(wire: bytes) -> int:
    return int(struct.unpack_from("!H", wire, tcp.CHECKSUM_OFFSET)[0])


def _verifies(src: bytes, dst: bytes, wire: bytes) -> bool:
    pseudo = (pseudo_header_v4 if len(src) == 4 else pseudo_header_v6)(
        src, dst, IpProtocol.TCP, len(wire)
    )
    return internet_checksum(wire, pseudo) == 0


def _outer(src: bytes, dst: bytes) -> IP | IPv6:
    if len(src) == 4:
        return IP(src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)))
    return IPv6(src=str(ipaddress.IPv6Address(src)), dst=str(ipaddress.IPv6Address(dst)))


def _scapy(src: bytes, dst: bytes, wire: bytes) -> TCP:
    return (_outer(src, dst) / TCP(wire))[TCP]


def _scapy_recomputed_checksum(src: bytes, dst: bytes, wire: bytes) -> int:
    """scapy's checksum for `wire` once it re-serialises the segment itself."""
    layer = _scapy(src, dst, wire)
    packet = layer.underlayer
    del layer.chksum
    return int(packet.__class__(bytes(packet))[TCP].chksum)


def _scapy_checksum_of_octets(src: bytes, dst: bytes, wire: bytes) -> int:
    """scapy's pseudo-header checksum over `wire` exactly as given.

    Re-serialising would not do for arbitrary options: scapy stops decoding at End of Option
    List and writes the option list back differently.
    """
    blank = wire[: tcp.CHECKSUM_OFFSET] + b"\x00\x00" + wire[tcp.CHECKSUM_OFFSET + 2 :]
    outer = _outer(src, dst)
    compute = in4_chksum if len(src) == 4 else in6_chksum
    return int(compute(IpProtocol.TCP, outer, blank))


# --- scapy both ways -----------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(SRC4, DST4), (SRC6, DST6)], ids=["v4", "v6"])
def test_scapy_syn_with_options_parses(src: bytes, dst: bytes) -> None:
    packet = _outer(src, dst) / TCP(
        sport=40000,
        dport=443,
        seq=0x11223344,
        ack=0,
        flags="S",
        window=64240,
        options=SCAPY_OPTIONS,
    )
    wire = bytes(packet[TCP])
    segment = tcp.parse(wire)
    assert isinstance(segment, TcpSegment)
    h = segment.header
    assert (h.src_port, h.dst_port, h.seq, h.ack) == (40000, 443, 0x11223344, 0)
    assert h.flags == TcpFlag.SYN
    assert (h.window, h.urgent) == (64240, 0)
    assert h.header_length == 40
    assert h.options == bytes.fromhex("020405b4 0402 080a0102030400000000 01 030307")
    assert segment.payload == b""
    assert h.checksum == _checksum_field(wire)
    assert _verifies(src, dst, wire)
    assert tcp.build(segment, src, dst) == wire


@pytest.mark.parametrize(("src", "dst"), [(SRC4, DST4), (SRC6, DST6)], ids=["v4", "v6"])
def test_built_segment_parses_in_scapy(src: bytes, dst: bytes) -> None:
    header = TcpHeader(
        src_port=80,
        dst_port=51000,
        seq=1,
        ack=0xFFFFFFFF,
        flags=TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE,
        window=1024,
        options=bytes.fromhex("020405a0 01 030302"),  # MSS 1440, NOP, WScale 2: 8 octets
    )
    wire = tcp.build(TcpSegment(header, b"hello"), src, dst)
    layer = _scapy(src, dst, wire)
    assert (layer.sport, layer.dport, layer.seq, layer.ack) == (80, 51000, 1, 0xFFFFFFFF)
    assert layer.flags == "SAE"
    assert layer.dataofs == 7
    assert layer.window == 1024
    assert dict(layer.options) == {"MSS": 1440, "NOP": None, "WScale": 2}
    assert bytes(layer.payload) == b"hello"
    assert layer.chksum == _scapy_recomputed_checksum(src, dst, wire)


def test_options_are_padded_with_zeros() -> None:
    header = TcpHeader(1, 2, options=bytes.fromhex("030307"))
    wire = tcp.build(TcpSegment(header, b"p"), SRC4, DST4)
    assert wire[12] >> 4 == 6
    assert wire[20:24] == bytes.fromhex("03030700")
    segment = tcp.parse(wire)
    assert isinstance(segment, TcpSegment)
    assert segment.header.options == bytes.fromhex("03030700")
    assert segment.payload == b"p"
    assert _verifies(SRC4, DST4, wire)


def test_flags_are_the_rfc_bits() -> None:
    # RFC 9293 section 3.1 (RFC 3168 for ECE/CWR, RFC 9768 for AE), low bit first.
    assert [f.value for f in TcpFlag] == [1 << i for i in range(9)]
    names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE"]
    assert [f.name for f in TcpFlag] == names


def test_reserved_and_ae_bits_survive_a_round_trip() -> None:
    # The 4 bits between Data Offset and CWR are kept in `flags` bits 8..11.
    wire = bytearray(tcp.build(TcpSegment(TcpHeader(1, 2, flags=TcpFlag.ACK), b""), SRC4, DST4))
    wire[12] |= 0x0F
    segment = tcp.parse(bytes(wire))
    assert isinstance(segment, TcpSegment)
    assert segment.header.flags == 0xF00 | TcpFlag.ACK
    assert tcp.build(segment, SRC4, DST4)[12] == wire[12]


def test_too_many_options_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="options"):
        tcp.build(TcpSegment(TcpHeader(1, 2, options=bytes(44)), b""), SRC4, DST4)


def test_header_fields_in_build_are_recomputed() -> None:
    header = TcpHeader(1, 2, checksum=0x1234)
    wire = tcp.build(TcpSegment(header, b""), SRC4, DST4)
    assert _checksum_field(wire) != 0x1234
    assert _verifies(SRC4, DST4, wire)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.L4_TRUNCATED),
        (bytes(19), DropReason.L4_TRUNCATED),
        (bytes(12) + b"\x40" + bytes(7), DropReason.L4_TRUNCATED),  # data offset 4
        (bytes(12) + b"\x00" + bytes(7), DropReason.L4_TRUNCATED),  # data offset 0
        (bytes(12) + b"\x60" + bytes(7), DropReason.L4_TRUNCATED),  # 24 > 20 given
        (bytes(12) + b"\xf0" + bytes(45), DropReason.L4_TRUNCATED),  # 60 > 58 given
    ],
    ids=["empty", "short", "offset-4", "offset-0", "options-cut", "max-options-cut"],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert tcp.parse(wire) == reason


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(header=tcp_headers, payload=payloads, pair=addresses)
def test_parse_build_round_trip(
    header: TcpHeader, payload: bytes, pair: tuple[bytes, bytes]
) -> None:
    src, dst = pair
    wire = tcp.build(TcpSegment(header, payload), src, dst)
    assert len(wire) == header.header_length + len(payload)
    parsed = tcp.parse(wire)
    assert isinstance(parsed, TcpSegment)
    assert parsed.header.checksum == _checksum_field(wire)
    assert parsed == TcpSegment(
        TcpHeader(
            header.src_port,
            header.dst_port,
            header.seq,
            header.ack,
            header.flags,
            header.window,
            header.urgent,
            header.options,
            _checksum_field(wire),
        ),
        payload,
    )
    assert _verifies(src, dst, wire)
    assert tcp.build(parsed, src, dst) == wire


@SCAPY
@given(header=tcp_headers, payload=payloads, pair=addresses)
def test_checksum_agrees_with_scapy(
    header: TcpHeader, payload: bytes, pair: tuple[bytes, bytes]
) -> None:
    src, dst = pair
    wire = tcp.build(TcpSegment(header, payload), src, dst)
    assert _checksum_field(wire) == _scapy_checksum_of_octets(src, dst, wire)


@FAST
@given(data=st.binary(max_size=80))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = tcp.parse(data)
    if isinstance(result, TcpSegment):
        assert result.header.header_length == (data[12] >> 4) * 4
        assert result.payload == data[result.header.header_length :]
    else:
        assert result == DropReason.L4_TRUNCATED


@FAST
@given(header=tcp_headers, payload=payloads)
def test_every_truncation_is_handled(header: TcpHeader, payload: bytes) -> None:
    wire = tcp.build(TcpSegment(header, payload), SRC4, DST4)
    for cut in range(len(wire)):
        result = tcp.parse(wire[:cut])
        if cut < header.header_length:
            assert result == DropReason.L4_TRUNCATED
        else:
            assert isinstance(result, TcpSegment)
            assert result.header.options == header.options
            assert result.payload == payload[: cut - header.header_length]
