"""ICMP for IPv4 (RFC 792)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.utils import checksum as scapy_checksum

from onm.packet import icmpv4, ipv4
from onm.packet.drop import DropReason
from onm.packet.icmpv4 import IcmpV4Message, IcmpV4Type, TimeExceeded, Unreachable

FAST = settings(max_examples=200, deadline=None)
SCAPY = settings(max_examples=40, deadline=None)

messages = st.builds(
    IcmpV4Message,
    type=st.integers(min_value=0, max_value=255),
    code=st.integers(min_value=0, max_value=255),
    rest=st.binary(min_size=4, max_size=4),
    body=st.binary(max_size=64),
)


def _scapy_recomputed_checksum(wire: bytes) -> int:
    packet = ICMP(wire)
    del packet.chksum
    return int(ICMP(bytes(packet)).chksum)


def _checksum_field(wire: bytes) -> int:
    return int(struct.unpack_from("!H", wire, 2)[0])


# Echo Request, identifier 1, sequence 1, no data (RFC 792 "Echo or Echo Reply Message").
# Checksum by hand: ~(0x0800 + 0x0001 + 0x0001) = ~0x0802 = 0xf7fd.
ECHO_REQUEST = bytes.fromhex("0800 f7fd 0001 0001")


def test_known_echo_request() -> None:
    message = icmpv4.parse(ECHO_REQUEST)
    assert message == IcmpV4Message(IcmpV4Type.ECHO_REQUEST, 0, icmpv4.echo_rest(1, 1), b"", 0xF7FD)
    assert not message.is_error
    assert icmpv4.build(message) == ECHO_REQUEST
    assert bytes(ICMP(type=8, id=1, seq=1)) == ECHO_REQUEST


def test_scapy_echo_parses() -> None:
    wire = bytes(ICMP(type="echo-reply", id=0xBEEF, seq=77) / b"0123456789abcdefg")  # odd length
    message = icmpv4.parse(wire)
    assert isinstance(message, IcmpV4Message)
    assert (message.type, message.code) == (IcmpV4Type.ECHO_REPLY, 0)
    assert message.rest == icmpv4.echo_rest(0xBEEF, 77)
    assert message.body == b"0123456789abcdefg"
    assert icmpv4.build(message) == wire


def test_fragmentation_needed_parses_in_scapy() -> None:
    # RFC 1191 section 4: the Next-Hop MTU in the low 16 bits of the second word.
    quoted = bytes(IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / UDP(sport=53, dport=53))
    message = IcmpV4Message(
        IcmpV4Type.DEST_UNREACHABLE,
        Unreachable.FRAGMENTATION_NEEDED,
        icmpv4.mtu_rest(1480),
        quoted,
    )
    wire = icmpv4.build(message)
    parsed = ICMP(wire)
    assert (parsed.type, parsed.code, parsed.nexthopmtu) == (3, 4, 1480)
    assert parsed[IPerror].dst == "10.0.0.2"
    assert parsed[UDPerror].dport == 53
    assert _checksum_field(wire) == _scapy_recomputed_checksum(wire)


def test_scapy_fragmentation_needed_parses() -> None:
    wire = bytes(
        ICMP(type=3, code=4, nexthopmtu=1400) / IPerror(src="10.0.0.1", dst="10.0.0.2") / UDPerror()
    )
    message = icmpv4.parse(wire)
    assert isinstance(message, IcmpV4Message)
    assert message.is_error
    assert message.rest == icmpv4.mtu_rest(1400)
    quoted = ipv4.parse(message.body)
    assert isinstance(quoted, ipv4.IPv4Packet)
    assert quoted.header.dst == bytes([10, 0, 0, 2])


def test_parameter_problem_pointer_parses_in_scapy() -> None:
    wire = icmpv4.build(
        IcmpV4Message(IcmpV4Type.PARAMETER_PROBLEM, 0, icmpv4.pointer_rest(20), b"")
    )
    parsed = ICMP(wire)
    assert (parsed.type, parsed.ptr) == (12, 20)
    assert _checksum_field(wire) == _scapy_recomputed_checksum(wire)


def test_time_exceeded_parses_in_scapy() -> None:
    wire = icmpv4.build(
        IcmpV4Message(IcmpV4Type.TIME_EXCEEDED, TimeExceeded.REASSEMBLY, bytes(4), b"q")
    )
    parsed = ICMP(wire)
    assert (parsed.type, parsed.code) == (11, 1)
    assert _checksum_field(wire) == _scapy_recomputed_checksum(wire)


@pytest.mark.parametrize("mtype", list(IcmpV4Type))
def test_is_error(mtype: IcmpV4Type) -> None:
    # RFC 792: the messages that quote an offending datagram.
    errors = {3, 4, 5, 11, 12}
    assert IcmpV4Message(mtype, 0, bytes(4), b"").is_error == (mtype in errors)


def test_rest_helpers() -> None:
    assert icmpv4.echo_rest(0x0102, 0x0304) == bytes([1, 2, 3, 4])
    assert icmpv4.mtu_rest(1500) == bytes([0, 0, 0x05, 0xDC])
    assert icmpv4.pointer_rest(9) == bytes([9, 0, 0, 0])


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.ICMP_TRUNCATED),
        (ECHO_REQUEST[:7], DropReason.ICMP_TRUNCATED),
        (ECHO_REQUEST[:2] + b"\x00\x00" + ECHO_REQUEST[4:], DropReason.ICMP_BAD_CHECKSUM),
        (ECHO_REQUEST[:7] + b"\x02", DropReason.ICMP_BAD_CHECKSUM),
        (ECHO_REQUEST + b"\x01", DropReason.ICMP_BAD_CHECKSUM),  # odd octet counts as 0x0100
    ],
    ids=["empty", "short", "checksum-zeroed", "sequence-changed", "extra-octet"],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert icmpv4.parse(wire) == reason


def test_checksum_verification_can_be_skipped() -> None:
    wire = ECHO_REQUEST[:2] + b"\x12\x34" + ECHO_REQUEST[4:]
    message = icmpv4.parse(wire, verify_checksum=False)
    assert isinstance(message, IcmpV4Message)
    assert message.checksum == 0x1234


def test_trailing_zero_octets_still_verify() -> None:
    # Zero words add nothing to the sum: the checksum cannot see them.
    message = icmpv4.parse(ECHO_REQUEST + bytes(2))
    assert isinstance(message, IcmpV4Message)
    assert message.body == bytes(2)


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(message=messages)
def test_parse_build_round_trip(message: IcmpV4Message) -> None:
    wire = icmpv4.build(message)
    parsed = icmpv4.parse(wire)
    assert isinstance(parsed, IcmpV4Message)
    assert parsed == IcmpV4Message(
        message.type, message.code, message.rest, message.body, _checksum_field(wire)
    )
    assert icmpv4.build(parsed) == wire


@SCAPY
@given(message=messages)
def test_checksum_agrees_with_scapy(message: IcmpV4Message) -> None:
    wire = icmpv4.build(message)
    assert scapy_checksum(wire) == 0
    if message.type in (0, 3, 4, 5, 8, 11, 12):  # types scapy dissects whatever the body
        assert _checksum_field(wire) == _scapy_recomputed_checksum(wire)


@FAST
@given(data=st.binary(max_size=40))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = icmpv4.parse(data)
    assert isinstance(result, IcmpV4Message) or result in (
        DropReason.ICMP_TRUNCATED,
        DropReason.ICMP_BAD_CHECKSUM,
    )
    unchecked = icmpv4.parse(data, verify_checksum=False)
    if isinstance(unchecked, IcmpV4Message):
        assert icmpv4.build(unchecked)[4:] == data[4:]


@FAST
@given(message=messages)
def test_every_truncation_is_handled(message: IcmpV4Message) -> None:
    wire = icmpv4.build(message)
    for cut in range(len(wire)):
        result = icmpv4.parse(wire[:cut])
        if cut < icmpv4.HEADER_LENGTH:
            assert result == DropReason.ICMP_TRUNCATED
        else:
            assert isinstance(result, IcmpV4Message | DropReason)


@FAST
@given(message=messages, data=st.data())
def test_any_single_bit_error_is_dropped(message: IcmpV4Message, data: st.DataObject) -> None:
    wire = bytearray(icmpv4.build(message))
    bit = data.draw(st.integers(min_value=0, max_value=len(wire) * 8 - 1))
    wire[bit // 8] ^= 0x80 >> (bit % 8)
    assert icmpv4.parse(bytes(wire)) == DropReason.ICMP_BAD_CHECKSUM
