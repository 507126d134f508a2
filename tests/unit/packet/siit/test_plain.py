"""onm.packet.siit.plain: the short way gives the full translator's bytes, or declines.

Every packet goes through both; wherever `plain_4to6` / `plain_6to4` answer, `translate_4to6` /
`translate_6to4` must give exactly one packet with the same bytes. Packets are built with scapy
and vary every field the translator decides on (RFC 7915 sections 4 and 5), so a rule the short
way forgot shows up as a difference. Addresses: RFC 6052 section 2.4 under 64:ff9b::/96 and
RFC 5737 documentation addresses, as in the translator's own tests.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.packet import Packet, Raw

from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.mapper import Rfc6052Mapper
from onm.packet.siit import SiitConfig, Translated, translate_4to6, translate_6to4
from onm.packet.siit.plain import plain_4to6, plain_6to4, plain_super_4to6, plain_super_6to4

MAPPER = Rfc6052Mapper("64:ff9b::/96")
CONFIGS = [
    SiitConfig(),
    SiitConfig(
        lowest_ipv6_mtu=1520, ipv6_mtu=1520, ipv4_mtu=1500, decrement_ttl=False, copy_tos=False
    ),
    SiitConfig(lowest_ipv6_mtu=1280, ipv6_mtu=9000, ipv4_mtu=1400),
]
V4_SOURCES = ["192.0.2.33", "198.51.100.7", "0.1.2.3", "127.0.0.1", "224.0.0.5", "10.0.0.2"]
V6_SOURCES = ["64:ff9b::c000:221", "64:ff9b::c633:6407", "2001:db8::1", "ff02::1"]


def _transport(kind: str, size: int, zero_udp_checksum: bool) -> Packet:
    body = Raw(bytes(range(256)) * (size // 256) + bytes(size % 256))
    if kind == "tcp":
        return TCP(sport=40000, dport=80, flags="PA", seq=7) / body
    if kind == "udp":
        return UDP(sport=5353, dport=53, chksum=0 if zero_udp_checksum else None) / body
    if kind == "icmp":
        return ICMP(type=8, id=1) / body
    return Raw(b"\x00" * 8) / body


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["tcp", "udp", "icmp", "other"]),
    size=st.integers(0, 1600),
    src=st.sampled_from(V4_SOURCES),
    ttl=st.integers(0, 255),
    tos=st.integers(0, 255),
    flags=st.sampled_from(["", "DF", "MF"]),
    fragment=st.sampled_from([0, 0, 0, 185]),
    options=st.booleans(),
    zero_udp_checksum=st.booleans(),
    damage=st.sampled_from(["none", "none", "checksum", "padding", "short"]),
    config=st.sampled_from(CONFIGS),
)
def test_4to6_agrees_with_the_translator(
    kind: str,
    size: int,
    src: str,
    ttl: int,
    tos: int,
    flags: str,
    fragment: int,
    options: bool,
    zero_udp_checksum: bool,
    damage: str,
    config: SiitConfig,
) -> None:
    protocol = {"other": 50}.get(kind, {"tcp": 6, "udp": 17, "icmp": 1}.get(kind, 0))
    ip = IP(src=src, dst="198.51.100.7", ttl=ttl, tos=tos, flags=flags, frag=fragment)
    if kind == "other":
        ip.proto = protocol
    if options:
        ip.options = [b"\x94\x04\x00\x00"]  # Router Alert
    packet = bytearray(bytes(ip / _transport(kind, size, zero_udp_checksum)))
    if damage == "checksum":
        packet[10] ^= 0xFF
    elif damage == "padding":
        packet += b"\0" * 6
    elif damage == "short":
        del packet[-1:]
    data = bytes(packet)
    fast = plain_4to6(data, MAPPER, config)
    if fast is not None:
        assert translate_4to6(data, MAPPER, config) == Translated((fast,))


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["tcp", "udp", "icmp", "fragment", "extension"]),
    size=st.integers(0, 1600),
    src=st.sampled_from(V6_SOURCES),
    hop_limit=st.integers(0, 255),
    traffic_class=st.integers(0, 255),
    zero_udp_checksum=st.booleans(),
    damage=st.sampled_from(["none", "none", "padding", "short"]),
    config=st.sampled_from(CONFIGS),
    identification=st.integers(0, 0xFFFFF),
)
def test_6to4_agrees_with_the_translator(
    kind: str,
    size: int,
    src: str,
    hop_limit: int,
    traffic_class: int,
    zero_udp_checksum: bool,
    damage: str,
    config: SiitConfig,
    identification: int,
) -> None:
    ip = IPv6(src=src, dst="64:ff9b::c000:221", hlim=hop_limit, tc=traffic_class)
    if kind == "icmp":
        packet: Packet = ip / ICMPv6EchoRequest(id=1) / Raw(bytes(size))
    elif kind == "fragment":
        packet = ip / IPv6ExtHdrFragment(id=9) / _transport("tcp", size, False)
    elif kind == "extension":
        packet = ip / IPv6ExtHdrDestOpt() / _transport("udp", size, False)
    else:
        packet = ip / _transport(kind, size, zero_udp_checksum)
    data = bytes(packet)
    if damage == "padding":
        data += b"\0" * 6
    elif damage == "short":
        data = data[:-1]
    fast = plain_6to4(data, MAPPER, config, identification)
    if fast is not None:
        assert translate_6to4(data, MAPPER, config, identification) == Translated((fast,))


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_the_common_case_takes_the_short_way(kind: str) -> None:
    # What a node sends most: the short way must not decline it (else nothing is gained).
    four = bytes(
        IP(src="192.0.2.33", dst="198.51.100.7", flags="DF") / _transport(kind, 1400, False)
    )
    six = plain_4to6(four, MAPPER, CONFIGS[1])
    assert six is not None
    assert plain_6to4(six, MAPPER, CONFIGS[1], 7) is not None


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (IP(src="192.0.2.33", dst="198.51.100.7") / ICMP(), "ICMP is rewritten"),
        (IP(src="192.0.2.33", dst="198.51.100.7", flags="MF") / TCP(), "a fragment"),
        (IP(src="192.0.2.33", dst="198.51.100.7", options=[b"\x94\x04\0\0"]) / TCP(), "options"),
        (IP(src="192.0.2.33", dst="198.51.100.7") / UDP(chksum=0), "UDP without checksum"),
        (IP(src="192.0.2.33", dst="198.51.100.7", flags="DF") / TCP() / Raw(bytes(1500)), "MTU"),
    ],
)
def test_what_the_short_way_leaves_to_the_translator(packet: Packet, why: str) -> None:
    assert plain_4to6(bytes(packet), MAPPER, CONFIGS[0]) is None, why


# --- super-packets: the headers straight away, as the general way makes them --------------------


def _general_4to6(headers: bytes, payload: bytes, size: int, config: SiitConfig) -> bytes | None:
    """What the agent's core does without the short way: translate the first segment, then put
    its headers in front of the whole payload."""
    first = offload.first_segment(headers, payload, size)
    if isinstance(first, DropReason):
        return None
    result = translate_4to6(first, MAPPER, config)
    if not isinstance(result, Translated) or len(result.packets) != 1:
        return None
    made = offload.super_headers(result.packets[0], len(payload))
    return None if isinstance(made, DropReason) else made


def _general_6to4(
    headers: bytes, payload: bytes, size: int, config: SiitConfig, identification: int
) -> bytes | None:
    first = offload.first_segment(headers, payload, size)
    if isinstance(first, DropReason):
        return None
    result = translate_6to4(first, MAPPER, config, identification)
    if not isinstance(result, Translated) or len(result.packets) != 1:
        return None
    if len(result.packets[0]) > config.ipv4_mtu:
        return None
    made = offload.super_headers(result.packets[0], len(payload))
    return None if isinstance(made, DropReason) else made


TCP_OPTIONS = [[], [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))], [("MSS", 1460)]]


@settings(max_examples=300, deadline=None)
@given(
    payload_length=st.integers(0, 66000),
    size=st.integers(-1, 2000),
    src=st.sampled_from(V4_SOURCES),
    ttl=st.integers(0, 255),
    tos=st.integers(0, 255),
    flags=st.sampled_from(["", "DF", "DF", "MF"]),
    ip_options=st.booleans(),
    udp=st.booleans(),
    tcp_options=st.sampled_from(TCP_OPTIONS),
    config=st.sampled_from(CONFIGS),
)
def test_super_4to6_agrees_with_the_general_way(
    payload_length: int,
    size: int,
    src: str,
    ttl: int,
    tos: int,
    flags: str,
    ip_options: bool,
    udp: bool,
    tcp_options: list[tuple[str, object]],
    config: SiitConfig,
) -> None:
    ip = IP(src=src, dst="198.51.100.7", ttl=ttl, tos=tos, flags=flags, len=0)
    if ip_options:
        ip.options = [b"\x94\x04\x00\x00"]
    transport: Packet = UDP() if udp else TCP(seq=5, flags="A", options=tcp_options)
    headers = bytes(ip / transport)
    payload = bytes(payload_length)
    fast = plain_super_4to6(headers, payload_length, size, MAPPER, config)
    if fast is not None:
        assert _general_4to6(headers, payload, size, config) == fast


@settings(max_examples=300, deadline=None)
@given(
    payload_length=st.integers(0, 66000),
    size=st.integers(-1, 2000),
    src=st.sampled_from(V6_SOURCES),
    hop_limit=st.integers(0, 255),
    traffic_class=st.integers(0, 255),
    tcp_options=st.sampled_from(TCP_OPTIONS),
    extension=st.booleans(),
    config=st.sampled_from(CONFIGS),
    identification=st.integers(0, 0xFFFFF),
)
def test_super_6to4_agrees_with_the_general_way(
    payload_length: int,
    size: int,
    src: str,
    hop_limit: int,
    traffic_class: int,
    tcp_options: list[tuple[str, object]],
    extension: bool,
    config: SiitConfig,
    identification: int,
) -> None:
    ip = IPv6(src=src, dst="64:ff9b::c000:221", hlim=hop_limit, tc=traffic_class, plen=0)
    tcp = TCP(seq=5, flags="A", options=tcp_options)
    headers = bytes(ip / IPv6ExtHdrDestOpt() / tcp if extension else ip / tcp)
    payload = bytes(payload_length)
    fast = plain_super_6to4(headers, payload_length, size, MAPPER, config, identification)
    if fast is not None:
        assert _general_6to4(headers, payload, size, config, identification) == fast


def test_a_full_sized_super_packet_takes_the_short_way() -> None:
    config = CONFIGS[1]  # the lab's: 1520-octet substrate, 1500-octet nodes
    tcp = TCP(seq=5, flags="A", options=TCP_OPTIONS[1])
    four = bytes(IP(src="192.0.2.33", dst="198.51.100.7", flags="DF", len=0) / tcp)
    six = plain_super_4to6(four, 65160, 1448, MAPPER, config)
    assert six is not None and six == _general_4to6(four, bytes(65160), 1448, config)
    back = plain_super_6to4(six, 65160, 1448, MAPPER, config, 9)
    assert back is not None and back == _general_6to4(six, bytes(65160), 1448, config, 9)
    assert plain_super_4to6(four, 65160, 1449, MAPPER, config) is None  # 1521 > 1520
