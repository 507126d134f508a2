"""ICMP for IPv6 (RFC 4443), checksummed over the IPv6 pseudo-header."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPerror6,
    IPv6,
    in6_chksum,
)

from onm.packet import icmpv6, ipv6
from onm.packet.checksum import internet_checksum
from onm.packet.drop import DropReason
from onm.packet.icmpv6 import IcmpV6Message, IcmpV6Type, ParameterProblem, Unreachable
from onm.packet.ipproto import IpProtocol

FAST = settings(max_examples=200, deadline=None)
SCAPY = settings(max_examples=40, deadline=None)

SRC = bytes.fromhex("20010db8000000000000000000000001")
DST = bytes.fromhex("20010db8000000000000000000000002")

ipv6s = st.binary(min_size=16, max_size=16)
messages = st.builds(
    IcmpV6Message,
    type=st.integers(min_value=0, max_value=255),
    code=st.integers(min_value=0, max_value=255),
    rest=st.binary(min_size=4, max_size=4),
    body=st.binary(max_size=64),
)


def _checksum_field(wire: bytes) -> int:
    return int(struct.unpack_from("!H", wire, 2)[0])


def _scapy_checksum(src: bytes, dst: bytes, wire: bytes) -> int:
    """scapy's pseudo-header checksum (its own RFC 8200 section 8.1 code) for `wire`."""
    blank = wire[:2] + b"\x00\x00" + wire[4:]
    underlayer = IPv6(src=_text(src), dst=_text(dst))
    return int(in6_chksum(IpProtocol.ICMPV6, underlayer, blank))


def _text(address: bytes) -> str:
    return str(ipaddress.IPv6Address(address))


def _scapy_message(layer: object) -> bytes:
    """The ICMPv6 octets of a scapy message sent from SRC to DST (checksum by scapy)."""
    wire = bytes(IPv6(src=_text(SRC), dst=_text(DST)) / layer)
    return wire[ipv6.HEADER_LENGTH :]


# --- Known vectors and scapy ---------------------------------------------------------------------


def test_scapy_echo_request_parses() -> None:
    wire = _scapy_message(ICMPv6EchoRequest(id=0x1234, seq=5, data=b"abc"))  # odd length
    message = icmpv6.parse(wire, SRC, DST)
    assert isinstance(message, IcmpV6Message)
    assert (message.type, message.code) == (IcmpV6Type.ECHO_REQUEST, 0)
    assert message.rest == icmpv6.echo_rest(0x1234, 5)
    assert message.body == b"abc"
    assert not message.is_error
    assert icmpv6.build(message, SRC, DST) == wire


def test_built_echo_reply_equals_scapy() -> None:
    message = IcmpV6Message(IcmpV6Type.ECHO_REPLY, 0, icmpv6.echo_rest(7, 8), b"ping")
    assert icmpv6.build(message, SRC, DST) == _scapy_message(
        ICMPv6EchoReply(id=7, seq=8, data=b"ping")
    )


def test_packet_too_big_equals_scapy() -> None:
    # RFC 4443 section 3.2: the MTU is the whole second word.
    quoted = bytes(IPv6(src=_text(DST), dst=_text(SRC)) / UDP(sport=1, dport=2))
    message = IcmpV6Message(IcmpV6Type.PACKET_TOO_BIG, 0, icmpv6.mtu_rest(1280), quoted)
    wire = icmpv6.build(message, SRC, DST)
    assert wire == _scapy_message(ICMPv6PacketTooBig(mtu=1280) / quoted)
    parsed = IPv6(ipv6.build(ipv6.IPv6Header(SRC, DST, IpProtocol.ICMPV6), wire))
    assert parsed[ICMPv6PacketTooBig].mtu == 1280
    assert parsed[IPerror6].dst == "2001:db8::1"


@pytest.mark.parametrize(
    ("message", "layer"),
    [
        (
            IcmpV6Message(IcmpV6Type.DEST_UNREACHABLE, Unreachable.PORT, bytes(4), b"x" * 48),
            ICMPv6DestUnreach(code=4) / (b"x" * 48),
        ),
        (
            IcmpV6Message(
                IcmpV6Type.PARAMETER_PROBLEM,
                ParameterProblem.UNRECOGNIZED_NEXT_HEADER,
                icmpv6.pointer_rest(40),
                b"y" * 9,
            ),
            ICMPv6ParamProblem(code=1, ptr=40) / (b"y" * 9),
        ),
        (
            IcmpV6Message(IcmpV6Type.TIME_EXCEEDED, 0, bytes(4), b""),
            ICMPv6TimeExceeded(code=0),
        ),
    ],
    ids=["port-unreachable", "parameter-problem", "time-exceeded"],
)
def test_error_messages_equal_scapy(message: IcmpV6Message, layer: object) -> None:
    wire = icmpv6.build(message, SRC, DST)
    assert wire == _scapy_message(layer)
    assert message.is_error
    assert icmpv6.parse(wire, SRC, DST) == IcmpV6Message(
        message.type, message.code, message.rest, message.body, _checksum_field(wire)
    )


def test_checksum_covers_the_pseudo_header() -> None:
    # RFC 4443 section 2.3: the same octets between other addresses do not verify.
    wire = icmpv6.build(IcmpV6Message(IcmpV6Type.ECHO_REQUEST, 0, bytes(4), b""), SRC, DST)
    assert isinstance(icmpv6.parse(wire, SRC, DST), IcmpV6Message)
    # The sum is commutative: swapping source and destination goes unnoticed.
    assert icmpv6.parse(wire, DST, SRC) == IcmpV6Message(
        128, 0, bytes(4), b"", _checksum_field(wire)
    )
    other = bytes.fromhex("20010db8000000000000000000000003")
    assert icmpv6.parse(wire, SRC, other) == DropReason.ICMP_BAD_CHECKSUM
    # An ICMPv4-style checksum (no pseudo-header) is wrong for ICMPv6.
    no_pseudo = wire[:2] + struct.pack("!H", internet_checksum(wire[:2] + bytes(2) + wire[4:]))
    assert icmpv6.parse(no_pseudo + wire[4:], SRC, DST) == DropReason.ICMP_BAD_CHECKSUM


@pytest.mark.parametrize("mtype", list(IcmpV6Type))
def test_is_error(mtype: IcmpV6Type) -> None:
    # RFC 4443 section 2.1: types 0..127 are errors, 128..255 informational.
    assert IcmpV6Message(mtype, 0, bytes(4), b"").is_error == (mtype < 128)


def test_rest_helpers() -> None:
    assert icmpv6.echo_rest(0x0102, 0x0304) == bytes([1, 2, 3, 4])
    assert icmpv6.mtu_rest(1280) == bytes([0, 0, 0x05, 0x00])
    assert icmpv6.pointer_rest(0x01020304) == bytes([1, 2, 3, 4])
    assert icmpv6.MIN_MTU == 1280


ECHO = _scapy_message(ICMPv6EchoRequest(id=1, seq=1, data=b"hi"))


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.ICMP_TRUNCATED),
        (ECHO[:7], DropReason.ICMP_TRUNCATED),
        (ECHO[:2] + b"\x00\x00" + ECHO[4:], DropReason.ICMP_BAD_CHECKSUM),
        (ECHO[:-1], DropReason.ICMP_BAD_CHECKSUM),
        (ECHO + b"\x00", DropReason.ICMP_BAD_CHECKSUM),  # the length is in the pseudo-header
        (b"\x81" + ECHO[1:], DropReason.ICMP_BAD_CHECKSUM),
    ],
    ids=["empty", "short", "checksum-zeroed", "cut", "extra-zero-octet", "type-changed"],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert icmpv6.parse(wire, SRC, DST) == reason


def test_checksum_verification_can_be_skipped() -> None:
    wire = ECHO[:2] + b"\x12\x34" + ECHO[4:]
    message = icmpv6.parse(wire, SRC, DST, verify_checksum=False)
    assert isinstance(message, IcmpV6Message)
    assert message.checksum == 0x1234


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(message=messages, src=ipv6s, dst=ipv6s)
def test_parse_build_round_trip(message: IcmpV6Message, src: bytes, dst: bytes) -> None:
    wire = icmpv6.build(message, src, dst)
    parsed = icmpv6.parse(wire, src, dst)
    assert parsed == IcmpV6Message(
        message.type, message.code, message.rest, message.body, _checksum_field(wire)
    )
    assert icmpv6.build(parsed, src, dst) == wire


@SCAPY
@given(message=messages, src=ipv6s, dst=ipv6s)
def test_checksum_agrees_with_scapy(message: IcmpV6Message, src: bytes, dst: bytes) -> None:
    wire = icmpv6.build(message, src, dst)
    assert _checksum_field(wire) == _scapy_checksum(src, dst, wire)


@FAST
@given(data=st.binary(max_size=40), src=ipv6s, dst=ipv6s)
def test_random_bytes_never_raise(data: bytes, src: bytes, dst: bytes) -> None:
    result = icmpv6.parse(data, src, dst)
    assert isinstance(result, IcmpV6Message) or result in (
        DropReason.ICMP_TRUNCATED,
        DropReason.ICMP_BAD_CHECKSUM,
    )
    assert isinstance(
        icmpv6.parse(data, src, dst, verify_checksum=False), IcmpV6Message | DropReason
    )


@FAST
@given(message=messages, src=ipv6s, dst=ipv6s)
def test_every_truncation_is_handled(message: IcmpV6Message, src: bytes, dst: bytes) -> None:
    wire = icmpv6.build(message, src, dst)
    for cut in range(len(wire)):
        result = icmpv6.parse(wire[:cut], src, dst)
        if cut < icmpv6.HEADER_LENGTH:
            assert result == DropReason.ICMP_TRUNCATED
        else:
            assert isinstance(result, IcmpV6Message | DropReason)


@FAST
@given(message=messages, data=st.data())
def test_any_single_bit_error_is_dropped(message: IcmpV6Message, data: st.DataObject) -> None:
    wire = bytearray(icmpv6.build(message, SRC, DST))
    bit = data.draw(st.integers(min_value=0, max_value=len(wire) * 8 - 1))
    wire[bit // 8] ^= 0x80 >> (bit % 8)
    assert icmpv6.parse(bytes(wire), SRC, DST) == DropReason.ICMP_BAD_CHECKSUM
