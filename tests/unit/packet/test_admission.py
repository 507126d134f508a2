"""onm.packet.admission: what each encoding carries, and the header checks, against the parsers.

The checks read header fields with struct for speed; `onm.packet.ipv4.parse` and
`onm.packet.ipv6.parse` are the reference: whatever they refuse, the checks refuse too.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.packet import Raw, raw

from onm.packet import admission, ipv4, ipv6
from onm.packet.admission import ENCAP, SIIT, check_ipv4, check_ipv6
from onm.packet.checksum import internet_checksum
from onm.packet.drop import DropReason

SRC6, DST6 = "fd00::1", "fd00::2"


def test_siit_carries_icmp_tcp_udp_and_encap_any_ipv4_protocol() -> None:
    assert SIIT.ipv4 == {1, 6, 17} and SIIT.ipv6 == {58, 6, 17} and SIIT.fragment_header
    assert {1, 2, 6, 17, 41, 47, 50, 51, 132} <= ENCAP.ipv4
    assert not ({0, 43, 44, 58, 59, 60, 255} & ENCAP.ipv4)
    assert ENCAP.ipv6 == {4} and not ENCAP.fragment_header


@pytest.mark.parametrize(
    "packet",
    [
        IP(src="10.0.0.2", dst="10.0.0.3") / UDP() / Raw(b"x" * 10),
        IP(src="10.0.0.2", dst="10.0.0.3") / TCP(options=[("MSS", 1460)]) / Raw(b"x"),
        IP(src="10.0.0.2", dst="10.0.0.3") / ICMP(),
        IP(src="10.0.0.2", dst="10.0.0.3", flags="MF") / UDP(len=500) / Raw(b"x" * 100),
        IP(src="10.0.0.2", dst="10.0.0.3", frag=100, proto=17) / Raw(b"any data"),
        IP(src="10.0.0.2", dst="10.0.0.3", options=b"\x94\x04\x00\x00") / UDP(),
    ],
    ids=["udp", "tcp", "icmp", "first-fragment", "later-fragment", "router-alert"],
)
def test_good_datagrams_pass(packet: IP) -> None:
    assert check_ipv4(raw(packet), SIIT) is None
    assert check_ipv4(raw(packet), ENCAP) is None


def test_a_super_packet_is_checked_from_its_headers() -> None:
    whole = raw(IP(src="10.0.0.2", dst="10.0.0.3") / TCP() / Raw(bytes(30000)))
    assert check_ipv4(whole[:40], SIIT, length=len(whole)) is None
    assert check_ipv4(whole[:40], SIIT, length=len(whole) - 1) is DropReason.IPV4_TRUNCATED
    six = raw(IPv6(src=SRC6, dst=DST6) / TCP() / Raw(bytes(30000)))
    assert check_ipv6(six[:60], SIIT, length=len(six)) is None
    assert check_ipv6(six[:60], SIIT, length=len(six) + 8) is DropReason.IPV6_BAD_PAYLOAD_LENGTH


def test_padding_only_where_ethernet_pads() -> None:
    short = raw(IP(src="10.0.0.2", dst="10.0.0.3") / UDP())
    assert check_ipv4(short + bytes(admission.ETHERNET_PADDED - len(short)), SIIT) is None
    assert check_ipv4(short + b"\0", SIIT, padded=False) is DropReason.IPV4_BAD_TOTAL_LENGTH
    tiny6 = raw(IPv6(src=SRC6, dst=DST6, nh=59))  # 40 octets, padded to 46 by Ethernet
    assert check_ipv6(tiny6 + bytes(6), ENCAP) is DropReason.PROTOCOL_NOT_CARRIED  # not length
    udp6 = raw(IPv6(src=SRC6, dst=DST6) / UDP() / Raw(b"x" * 20))
    assert check_ipv6(udp6 + b"\0", SIIT) is DropReason.IPV6_BAD_PAYLOAD_LENGTH


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrDestOpt() / UDP(), "IPV6_EXTENSION_NOT_CARRIED"),
        (
            IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(nh=60) / Raw(bytes(8)),
            "IPV6_EXTENSION_NOT_CARRIED",
        ),
        (IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(nh=17, m=1) / UDP(len=7), "UDP_BAD_LENGTH"),
        (IPv6(src=SRC6, dst=DST6, nh=6) / Raw(bytes(19)), "L4_TRUNCATED"),
        (IPv6(src=SRC6, dst=DST6, nh=17) / Raw(bytes(7)), "L4_TRUNCATED"),
    ],
    ids=[
        "destination-options",
        "fragment-then-destination-options",
        "fragment-udp-length",
        "tcp-19",
        "udp-7",
    ],
)
def test_siit_refusals_from_the_substrate(packet: IPv6, reason: str) -> None:
    assert check_ipv6(raw(packet), SIIT) is DropReason[reason]


def _with_checksum(header: bytes) -> bytes:
    out = bytearray(header)
    ihl = (out[0] & 0x0F) * 4 if out else 0
    if 20 <= ihl <= len(out):
        struct.pack_into("!H", out, 10, 0)
        struct.pack_into("!H", out, 10, internet_checksum(bytes(out[:ihl])))
    return bytes(out)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=80), st.booleans())
def test_what_the_ipv4_parser_refuses_the_check_refuses(data: bytes, fix: bool) -> None:
    packet = _with_checksum(data) if fix else data
    parsed = ipv4.parse(packet)
    refused = check_ipv4(packet, ENCAP, padded=False)
    if isinstance(parsed, DropReason):
        assert refused is not None, packet
    if refused is None:
        assert not isinstance(parsed, DropReason)
        assert parsed.header.total_length == len(packet)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_what_the_ipv6_parser_refuses_the_check_refuses(data: bytes) -> None:
    refused = check_ipv6(data, SIIT)
    parsed = ipv6.parse(data)
    if isinstance(parsed, DropReason):
        assert refused is not None
    if refused is None and not isinstance(parsed, DropReason):
        assert ipv6.HEADER_LENGTH + parsed.header.payload_length == len(data) or len(data) <= 46
        upper = ipv6.find_upper_layer(parsed.header.next_header, parsed.payload)
        assert not isinstance(upper, DropReason) and upper.protocol in SIIT.ipv6
