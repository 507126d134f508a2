"""IPv4 -> IPv6 translation (RFC 7915 section 4): `onm.packet.siit.four_to_six.translate_4to6`.

Inputs are built with scapy and outputs are parsed and checked with scapy (checksums recomputed by
scapy, never by onm). `docs/rfc7915-section4.md` maps every requirement of RFC 7915 section 4 to
the tests here.

Addresses: RFC 6052 section 2.4's example, 192.0.2.33 <-> 64:ff9b::c000:221 under the Well-Known
Prefix, is the IPv6-side host throughout; 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737) are the
IPv4 side.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import (
    ICMP,
    IP,
    TCP,
    UDP,
    IPOption_EOL,
    IPOption_LSRR,
    IPOption_NOP,
    IPOption_RR,
    IPOption_Security,
    IPOption_SSRR,
    IPOption_Timestamp,
    in4_chksum,
)
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrFragment,
    in6_chksum,
)
from scapy.packet import Packet, Raw
from scapy.utils import checksum

from onm.addressing import HostPrefix, Location, SubstrateAddress, embed_ipv4
from onm.packet.drop import DropReason
from onm.packet.mapper import AddressMapper, Rfc6052Mapper, SubstrateMapper
from onm.packet.siit import (
    Drop,
    IcmpError,
    Result,
    SiitConfig,
    Translated,
    UdpZeroChecksum,
    icmp_map,
    translate_4to6,
    translate_6to4,
)
from support.oracle import assert_ipv4_header_checksum
from support.oracle import single_packet as single

# RFC 6052 section 2.4: 192.0.2.33 under the Well-Known Prefix 64:ff9b::/96.
HOST4 = "192.0.2.33"
HOST6 = "64:ff9b::c000:221"
PEER4 = "198.51.100.10"
PEER6 = "64:ff9b::c633:640a"
ROUTER4 = "198.51.100.1"
ROUTER6 = "64:ff9b::c633:6401"
TRANSLATOR4 = "203.0.113.1"

MAPPER = Rfc6052Mapper("64:ff9b::/96")
CONFIG = SiitConfig()
ANSWERING = SiitConfig(icmp_source_v4=ipaddress.IPv4Address(TRANSLATOR4).packed)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers -------------------------------------------------------------------------------------


def translate(
    packet: Packet | bytes, config: SiitConfig = CONFIG, mapper: AddressMapper = MAPPER
) -> Result:
    return translate_4to6(raw_bytes(packet), mapper, config)


def raw_bytes(packet: Packet | bytes) -> bytes:
    return packet if isinstance(packet, bytes) else bytes(packet)


def v4_to_peer(payload: Packet, **fields: object) -> Packet:
    """An IPv4 packet from the IPv4 peer to the IPv6 host (the direction translated here)."""
    return IP(src=PEER4, dst=HOST4, **fields) / payload


def quoted(payload: Packet, **fields: object) -> bytes:
    """The packet an ICMPv4 error is about: the IPv6 host's packet after 6->4, IPv4 side."""
    return bytes(IP(src=HOST4, dst=PEER4, **fields) / payload)


def icmp_error(icmp: Packet, body: bytes, **fields: object) -> Packet:
    """An ICMPv4 error from an IPv4 router to the IPv6 host."""
    return IP(src=ROUTER4, dst=HOST4, **fields) / icmp / Raw(body)


def icmpv4(icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    """ICMPv4 octets with any rest-of-header, checksummed by scapy."""
    message = bytes((icmp_type, code, 0, 0)) + rest + body
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def assert_checksum_valid(packet: bytes, layer: type[Packet]) -> None:
    """scapy recomputes `layer`'s checksum over the IPv6 packet and finds the one on the wire."""
    parsed = IPv6(packet)
    field = "cksum" if "cksum" in parsed[layer].fields else "chksum"
    on_wire = parsed[layer].getfieldval(field)
    delattr(parsed[layer], field)
    assert IPv6(bytes(parsed))[layer].getfieldval(field) == on_wire


def icmpv6_residual(packet: bytes) -> int:
    """scapy's checksum over IPv6 pseudo-header and the ICMPv6 octets as sent: 0 when valid."""
    parsed = IPv6(packet)
    assert parsed.nh == 58
    return int(in6_chksum(58, parsed.payload, packet[40:]))


def assert_ipv4_checksums_valid(packet: bytes) -> None:
    assert_ipv4_header_checksum(packet)
    assert checksum(packet[IP(packet).ihl * 4 :]) == 0  # ICMPv4: no pseudo-header


def reassemble(fragments: tuple[bytes, ...]) -> tuple[bytes, list[int], set[int], set[int]]:
    """RFC 8200 section 4.5 by hand: (payload by offset, M flags in order, ids, next headers).

    The pieces must be contiguous from the first one's offset on (0 for a whole datagram)."""
    pieces = []
    for fragment in fragments:
        parsed = IPv6(fragment)
        assert parsed.nh == 44
        assert parsed.plen == len(fragment) - 40
        header = parsed[IPv6ExtHdrFragment]
        pieces.append((header.offset * 8, header.m, header.id, header.nh, fragment[48:]))
    pieces.sort(key=lambda piece: piece[0])
    payload = b""
    start = pieces[0][0]
    for offset, _, _, _, data in pieces:
        assert offset == start + len(payload), "fragments must be contiguous"
        payload += data
    return (
        payload,
        [piece[1] for piece in pieces],
        {piece[2] for piece in pieces},
        {piece[3] for piece in pieces},
    )


def assert_generated_error(
    result: Result, original: bytes, icmp_type: int, code: int, reason: DropReason
) -> IP:
    """An ICMPv4 error made by the translator: to the sender, from `icmp_source_v4`, quoting."""
    assert isinstance(result, IcmpError), result
    assert result.reason == reason
    reply = IP(result.packet)
    assert (reply.src, reply.dst, reply.proto) == (TRANSLATOR4, PEER4, 1)
    assert (reply[ICMP].type, reply[ICMP].code) == (icmp_type, code)
    assert result.packet[28:] == original[: 576 - 28]  # RFC 1812 4.3.2.3
    assert len(result.packet) <= 576
    assert_ipv4_checksums_valid(result.packet)
    return reply


class SplitMapper:
    """Different prefixes for sources and destinations (RFC 7915 section 6 allows that), so the
    tests can see which way each address was mapped."""

    def __init__(self) -> None:
        self.sources = Rfc6052Mapper("2001:db8:5::/96")
        self.destinations = Rfc6052Mapper("2001:db8:d::/96")

    def source_4to6(self, address: bytes) -> bytes | None:
        return self.sources.embed(address)

    def destination_4to6(self, address: bytes) -> bytes | None:
        return self.destinations.embed(address)

    def source_6to4(self, address: bytes) -> bytes | None:
        return self.sources.extract(address)

    def destination_6to4(self, address: bytes) -> bytes | None:
        return self.destinations.extract(address)


# --- section 4.1: the IPv6 header ----------------------------------------------------------------


def test_rfc6052_example_addresses() -> None:
    """RFC 6052 section 2.4: 192.0.2.33 is 64:ff9b::192.0.2.33 under the Well-Known Prefix."""
    out = IPv6(single(translate(IP(src=HOST4, dst=PEER4) / UDP(sport=1, dport=2))))
    assert (out.src, out.dst) == (HOST6, PEER6)
    assert ipaddress.IPv6Address(out.src) == ipaddress.IPv6Address("64:ff9b::192.0.2.33")


# RFC 6052 section 2.4, the table of 192.0.2.33 embedded under each prefix length.
RFC6052_TABLE = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::c000:221"),
]


@pytest.mark.parametrize(("prefix", "expected"), RFC6052_TABLE)
def test_prefix_lengths(prefix: str, expected: str) -> None:
    """RFC 6052 section 2.4 table: the same packet under each prefix length, checksum moved."""
    mapper = Rfc6052Mapper(prefix)
    packet = IP(src=PEER4, dst=HOST4) / UDP(sport=5353, dport=53) / Raw(b"query")
    out = single(translate(packet, mapper=mapper))
    parsed = IPv6(out)
    assert ipaddress.IPv6Address(parsed.dst) == ipaddress.IPv6Address(expected)
    assert mapper.extract(ipaddress.IPv6Address(parsed.src).packed) == bytes([198, 51, 100, 10])
    assert_checksum_valid(out, UDP)


def test_substrate_mapper() -> None:
    """onm's own layout (DESIGN.md section 2): each IPv4 address is looked up to the substrate
    address of the host its node lives on."""
    here = HostPrefix(Location(locale=1, area=2, rack=3, node=4))
    there = HostPrefix(Location(locale=1, area=2, rack=3, node=5))
    peer4, host4 = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3])
    peer6 = embed_ipv4(here, 0x00ABCD, peer4, slot=1)
    host6 = SubstrateAddress(there, 0x00ABCD, ipaddress.IPv4Address(host4), slot=2).packed
    mapper = SubstrateMapper(0x00ABCD, {peer4: peer6, host4: host6})
    packet = IP(src="10.0.0.2", dst="10.0.0.3") / TCP(sport=40000, dport=80, flags="S")
    out = single(translate(packet, mapper=mapper))
    parsed = IPv6(out)
    assert ipaddress.IPv6Address(parsed.src).packed == peer6
    assert ipaddress.IPv6Address(parsed.dst).packed == host6
    assert SubstrateAddress.decode(parsed.dst).ipv4 == ipaddress.IPv4Address("10.0.0.3")
    assert_checksum_valid(out, TCP)


def test_header_fields() -> None:
    """Version 6, Flow Label 0, Payload Length = Total Length - header, Next Header = Protocol,
    Hop Limit = TTL - 1 (RFC 7915 4.1)."""
    packet = v4_to_peer(TCP(sport=1234, dport=80, flags="PA") / Raw(b"x" * 100), ttl=64, tos=0)
    out = single(translate(packet))
    parsed = IPv6(out)
    assert parsed.version == 6
    assert parsed.fl == 0
    assert parsed.plen == 20 + 100 == len(out) - 40
    assert parsed.nh == 6
    assert parsed.hlim == 63
    assert out[40:56] == bytes(packet[TCP])[:16]
    assert out[58:] == bytes(packet[TCP])[18:]


@pytest.mark.parametrize("tos", [0x00, 0x01, 0x02, 0x03, 0xB8, 0x28, 0xFF])
def test_traffic_class_copied_from_tos(tos: int) -> None:
    """RFC 7915 4.1: Traffic Class is by default the whole TOS octet (DSCP and ECN)."""
    out = IPv6(single(translate(v4_to_peer(UDP(sport=1, dport=2), tos=tos))))
    assert out.tc == tos
    assert out.fl == 0


def test_copy_tos_false_zeroes_traffic_class() -> None:
    """RFC 7915 4.1: SHOULD be able to ignore the TOS and always write Traffic Class 0."""
    config = SiitConfig(copy_tos=False)
    out = IPv6(single(translate(v4_to_peer(UDP(sport=1, dport=2), tos=0xB8), config)))
    assert out.tc == 0


@pytest.mark.parametrize("ttl", [2, 64, 255])
def test_hop_limit_is_ttl_minus_one(ttl: int) -> None:
    """RFC 7915 4.1 Hop Limit: the translator is a router and decrements."""
    out = IPv6(single(translate(v4_to_peer(UDP(sport=1, dport=2), ttl=ttl))))
    assert out.hlim == ttl - 1


@pytest.mark.parametrize("ttl", [1, 64, 255])
def test_decrement_ttl_false_copies_ttl(ttl: int) -> None:
    config = SiitConfig(decrement_ttl=False)
    out = IPv6(single(translate(v4_to_peer(UDP(sport=1, dport=2), ttl=ttl), config)))
    assert out.hlim == ttl


def test_decrement_ttl_false_still_refuses_ttl_zero() -> None:
    """RFC 1812 4.2.2.9, RFC 1122 3.2.1.7: no datagram is sent on with TTL 0, decremented or
    not; with an ICMP source configured, the sender hears Time Exceeded as with decrementing."""
    packet = v4_to_peer(UDP(sport=1, dport=2), ttl=0)
    assert translate(packet, SiitConfig(decrement_ttl=False)) == Drop(DropReason.TTL_EXPIRED)
    config = SiitConfig(decrement_ttl=False, icmp_source_v4=bytes([192, 0, 2, 1]))
    result = translate(packet, config)
    assert isinstance(result, IcmpError) and result.reason is DropReason.TTL_EXPIRED
    assert (IP(result.packet)[ICMP].type, IP(result.packet)[ICMP].code) == (11, 0)


@pytest.mark.parametrize("protocol", [0, 4, 41, 47, 50, 51, 103, 132, 253, 255])
def test_other_protocols_forwarded_untouched(protocol: int) -> None:
    """RFC 7915 4.1 Next Header and 4.5: every transport protocol is forwarded, its Protocol
    copied to Next Header and its octets left alone."""
    data = bytes(range(64))
    out = single(translate(IP(src=PEER4, dst=HOST4, proto=protocol) / Raw(data)))
    parsed = IPv6(out)
    assert parsed.nh == protocol
    assert out[40:] == data


# Options that are not source routes, and source routes whose pointer is past the end (RFC 791
# 3.1: the route is then complete).
IGNORED_OPTIONS = [
    [IPOption_RR(routers=["0.0.0.0", "0.0.0.0"])],
    [IPOption_Timestamp(flg=0, timestamp=[0, 0])],
    [IPOption_Security(), IPOption_NOP(), IPOption_EOL()],
    [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()],
    [IPOption_LSRR(routers=["203.0.113.7", "203.0.113.8"], pointer=12)],
    [IPOption_SSRR(routers=["203.0.113.7"], pointer=8)],
]


@pytest.mark.parametrize("options", IGNORED_OPTIONS, ids=lambda o: "+".join(x.name for x in o))
def test_ipv4_options_not_translated(options: list[Packet]) -> None:
    """RFC 7915 4.1 (and 1.2): options are ignored, the packet translated normally; expired
    source routes included. Payload Length leaves the options out."""
    plain = IP(src=PEER4, dst=HOST4) / TCP(sport=1234, dport=80, flags="A") / Raw(b"data")
    # The segment as checksummed for the plain packet: scapy would use the last hop of a source
    # route even when the route is complete and that hop is already in the destination field.
    payload = Raw(bytes(plain[TCP]))
    with_options = IP(src=PEER4, dst=HOST4, proto=6, options=options) / payload
    assert IP(bytes(with_options)).ihl > 5
    out = single(translate(with_options))
    assert out == single(translate(plain))
    assert IPv6(out).plen == len(bytes(payload))
    assert_checksum_valid(out, TCP)


SOURCE_ROUTES = [
    IPOption_LSRR(routers=["203.0.113.7", "203.0.113.8"]),
    IPOption_SSRR(routers=["203.0.113.7", "203.0.113.8"]),
    IPOption_LSRR(routers=["203.0.113.7", "203.0.113.8"], pointer=8),
]


@pytest.mark.parametrize("route", SOURCE_ROUTES, ids=["lsrr", "ssrr", "lsrr-half-done"])
def test_unexpired_source_route_gets_source_route_failed(route: Packet) -> None:
    """RFC 7915 4.1: an unexpired source route MUST drop the packet; SHOULD answer 3/5."""
    packet = bytes(IP(src=PEER4, dst=HOST4, options=[route]) / UDP(sport=1, dport=2))
    result = translate(packet, ANSWERING)
    assert_generated_error(result, packet, 3, 5, DropReason.IPV4_SOURCE_ROUTE)
    assert isinstance(result, IcmpError) and result.packet[24:28] == bytes(4)  # unused: zero


@pytest.mark.parametrize("route", SOURCE_ROUTES, ids=["lsrr", "ssrr", "lsrr-half-done"])
def test_unexpired_source_route_dropped_without_icmp_source(route: Packet) -> None:
    packet = IP(src=PEER4, dst=HOST4, options=[route]) / UDP(sport=1, dport=2)
    assert translate(packet) == Drop(DropReason.IPV4_SOURCE_ROUTE)


@pytest.mark.parametrize("ttl", [0, 1])
def test_ttl_expired_gets_time_exceeded(ttl: int) -> None:
    """RFC 7915 4.1 Hop Limit: check for zero and send ICMPv4 Time Exceeded (11/0), quoting the
    packet as received."""
    packet = bytes(v4_to_peer(UDP(sport=1, dport=2) / Raw(b"probe"), ttl=ttl))
    result = translate(packet, ANSWERING)
    assert_generated_error(result, packet, 11, 0, DropReason.TTL_EXPIRED)


def test_ttl_expired_dropped_without_icmp_source() -> None:
    assert translate(v4_to_peer(UDP(sport=1, dport=2), ttl=1)) == Drop(DropReason.TTL_EXPIRED)


def test_generated_error_quotes_at_most_576_octets() -> None:
    """RFC 1812 4.3.2.3 (the translator is a router): the error fits in 576 octets."""
    packet = bytes(v4_to_peer(UDP(sport=1, dport=2) / Raw(b"z" * 1200), ttl=1))
    result = translate(packet, ANSWERING)
    reply = assert_generated_error(result, packet, 11, 0, DropReason.TTL_EXPIRED)
    assert len(bytes(reply)) == 576


ILLEGAL_SOURCES = ["0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.0.9", "224.0.0.1", "240.0.0.1"]
ILLEGAL_SOURCES += ["255.255.255.255"]


@pytest.mark.parametrize("source", ILLEGAL_SOURCES)
def test_illegal_source_dropped(source: str) -> None:
    """RFC 7915 4.1 Source Address: illegal sources (RFC 1812 5.3.7) SHOULD be silently dropped,
    even with ICMP errors enabled."""
    packet = IP(src=source, dst=HOST4) / UDP(sport=1, dport=2)
    assert translate(packet, ANSWERING) == Drop(DropReason.IPV4_ILLEGAL_SOURCE)


@pytest.mark.parametrize("source", ILLEGAL_SOURCES)
def test_illegal_source_translated_in_icmp_error(source: str) -> None:
    """RFC 7915 4.1: an ICMPv4 error from an illegal source is translated for troubleshooting."""
    body = quoted(UDP(sport=1, dport=2))
    error = IP(src=source, dst=HOST4) / ICMP(type=3, code=3) / Raw(body)
    out = IPv6(single(translate(error)))
    assert ipaddress.IPv6Address(out.src) == ipaddress.IPv6Address(f"64:ff9b::{source}")
    assert (out[ICMPv6DestUnreach].type, out[ICMPv6DestUnreach].code) == (1, 4)


def test_unmappable_addresses_dropped() -> None:
    """Section 6: a mapper that has no IPv6 address for an IPv4 one: ADDRESS_UNMAPPABLE."""
    known = bytes([10, 0, 0, 2])
    location = embed_ipv4(HostPrefix(Location(1, 1, 1, 1)), 7, known)
    mapper = SubstrateMapper(7, {known: location})
    to_unknown = IP(src="10.0.0.2", dst="10.0.0.99") / UDP(sport=1, dport=2)
    from_unknown = IP(src="10.0.0.99", dst="10.0.0.2") / UDP(sport=1, dport=2)
    for packet in (to_unknown, from_unknown):
        assert translate(packet, mapper=mapper) == Drop(DropReason.ADDRESS_UNMAPPABLE)
    assert isinstance(
        translate(IP(src="10.0.0.2", dst="10.0.0.2") / UDP(), mapper=mapper), Translated
    )


# --- sections 4 and 4.1: fragments and path MTU ---------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "more"), [(0, True), (185, True), (185, False)], ids=["first", "middle", "last"]
)
def test_fragment_gets_fragment_header(offset: int, more: bool) -> None:
    """RFC 7915 4.1 Fragment Header: Next Header = Protocol, offset and M copied, low 16 bits of
    Identification copied (high 16 zero)."""
    packet = IP(src=PEER4, dst=HOST4, id=0xBEEF, frag=offset, flags="MF" if more else 0, proto=17)
    packet /= Raw(bytes(range(256)) * 2)
    out = single(translate(packet))
    parsed = IPv6(out)
    assert parsed.nh == 44
    assert parsed.plen == 8 + 512
    fragment = parsed[IPv6ExtHdrFragment]
    assert (fragment.nh, fragment.offset, fragment.m, fragment.id) == (17, offset, more, 0xBEEF)
    assert out[40:48] == struct.pack("!BxHI", 17, offset << 3 | more, 0x0000BEEF)
    if offset:
        assert out[48:] == bytes(packet[Raw])  # data of a non-first fragment is untouched


def test_first_fragment_transport_checksum_moved() -> None:
    """RFC 7915 4 and 4.5: the TCP checksum in the first fragment covers the whole datagram; the
    fragments reassembled on the IPv6 side verify (scapy)."""
    full = IP(src=PEER4, dst=HOST4, id=77) / TCP(sport=1234, dport=80, flags="PA")
    full /= Raw(bytes(range(256)) * 4)
    segment = bytes(full)[20:]
    first = IP(src=PEER4, dst=HOST4, id=77, proto=6, flags="MF") / Raw(segment[:512])
    rest = IP(src=PEER4, dst=HOST4, id=77, proto=6, frag=64) / Raw(segment[512:])
    pieces = single(translate(first)), single(translate(rest))
    payload, more, ids, next_headers = reassemble(pieces)
    assert (more, ids, next_headers) == ([1, 0], {77}, {6})
    whole = bytes(IPv6(src=PEER6, dst=HOST6, nh=6) / Raw(payload))
    assert_checksum_valid(whole, TCP)
    unfragmented = single(translate(full))
    assert unfragmented[40:] == payload


def test_df_clear_small_packet_has_no_fragment_header() -> None:
    """RFC 7915 section 4: with DF clear, the translator MUST NOT add a Fragment Header to a
    packet it does not fragment."""
    packet = v4_to_peer(UDP(sport=1, dport=2) / Raw(b"a" * (1280 - 48)), flags=0)
    out = single(translate(packet))
    assert len(out) == 1280
    assert IPv6(out).nh == 17


def test_df_set_unfragmented_packet_has_no_fragment_header() -> None:
    """RFC 7915 section 4: with DF set a Fragment Header appears only on IPv4 fragments."""
    packet = v4_to_peer(UDP(sport=1, dport=2) / Raw(b"a" * 1400), flags="DF")
    out = single(translate(packet))
    assert IPv6(out).nh == 17
    assert len(out) == 20 + len(bytes(packet))


@pytest.mark.parametrize("lowest", [1280, 1500])
@pytest.mark.parametrize("size", [1300, 1501, 3000, 9000, 65000])
def test_df_clear_big_packet_fragmented(lowest: int, size: int) -> None:
    """RFC 7915 4 and 4.1: DF clear and bigger than lowest-ipv6-mtu: fragments, each at most
    lowest-ipv6-mtu with its Fragment Header; reassembled they are the translated datagram."""
    data = bytes(i % 251 for i in range(size - 28))
    packet = v4_to_peer(UDP(sport=1, dport=2) / Raw(data), flags=0, id=0x1234)
    config = SiitConfig(lowest_ipv6_mtu=lowest, ipv6_mtu=max(lowest, 1500))
    result = translate(packet, config)
    assert isinstance(result, Translated)
    if size + 20 <= lowest:
        assert len(result.packets) == 1 and IPv6(result.packets[0]).nh == 17
        return
    for fragment in result.packets:
        assert len(fragment) <= lowest
    for fragment in result.packets[:-1]:
        assert (len(fragment) - 48) % 8 == 0
    offsets = [IPv6(fragment)[IPv6ExtHdrFragment].offset for fragment in result.packets]
    assert offsets == sorted(offsets)  # section 4: in order
    payload, more, ids, next_headers = reassemble(result.packets)
    assert more == [1] * (len(result.packets) - 1) + [0]
    assert (ids, next_headers) == ({0x1234}, {17})
    assert payload[8:] == data
    whole = bytes(IPv6(src=PEER6, dst=HOST6, nh=17) / Raw(payload))
    assert_checksum_valid(whole, UDP)


def test_big_echo_fragmented() -> None:
    """The translator may fragment ICMP it translated itself (it is the IPv6 sender then): a
    DF-clear ping too big for lowest-ipv6-mtu arrives as fragments of a valid ICMPv6 echo."""
    data = bytes(i % 199 for i in range(1400))
    packet = v4_to_peer(ICMP(type=8, id=5, seq=6) / Raw(data), flags=0, id=0x0E0E)
    result = translate(packet)
    assert isinstance(result, Translated) and len(result.packets) == 2
    payload, more, ids, next_headers = reassemble(result.packets)
    assert (more, ids, next_headers) == ([1, 0], {0x0E0E}, {58})
    whole = bytes(IPv6(src=PEER6, dst=HOST6, nh=58) / Raw(payload))
    assert icmpv6_residual(whole) == 0
    echo = IPv6(whole)[ICMPv6EchoRequest]
    assert (echo.id, echo.seq, echo.data) == (5, 6, data)


def test_raised_lowest_ipv6_mtu_avoids_fragment_header() -> None:
    """RFC 7915 4 and 4.1: lowest-ipv6-mtu is configurable above 1280 (fewer Fragment Headers)."""
    packet = v4_to_peer(UDP(sport=1, dport=2) / Raw(b"b" * 1400), flags=0)
    default = translate(packet)
    assert isinstance(default, Translated) and len(default.packets) == 2
    out = single(translate(packet, SiitConfig(lowest_ipv6_mtu=1500)))
    assert IPv6(out).nh == 17


def test_lowest_ipv6_mtu_never_exceeds_next_hop() -> None:
    """A lowest-ipv6-mtu above the next-hop MTU would black-hole DF-clear packets: the smaller
    one is used."""
    packet = v4_to_peer(UDP(sport=1, dport=2) / Raw(b"b" * 1450), flags=0)
    result = translate(packet, SiitConfig(lowest_ipv6_mtu=9000, ipv6_mtu=1400))
    assert isinstance(result, Translated)
    assert all(len(fragment) <= 1400 for fragment in result.packets)


@pytest.mark.parametrize(("offset", "more"), [(100, True), (100, False)], ids=["middle", "last"])
def test_big_fragment_fragmented_again(offset: int, more: bool) -> None:
    """RFC 7915 4.1: an IPv4 fragment too big for lowest-ipv6-mtu is cut again, offsets relative
    to the original datagram, M set on all but the original's last piece."""
    data = bytes(i % 253 for i in range(1400))
    packet = IP(src=PEER4, dst=HOST4, id=9, proto=6, frag=offset, flags="MF" if more else 0)
    result = translate(packet / Raw(data))
    assert isinstance(result, Translated) and len(result.packets) == 2
    first = IPv6(result.packets[0])[IPv6ExtHdrFragment]
    assert first.offset == offset
    payload, flags, ids, next_headers = reassemble(result.packets)
    assert payload == data
    assert flags == [1, int(more)]
    assert (ids, next_headers) == ({9}, {6})


@pytest.mark.parametrize("ipv6_mtu", [1280, 1400, 1500])
def test_df_set_too_big_gets_fragmentation_needed(ipv6_mtu: int) -> None:
    """RFC 7915 4.1: DF set and next-hop MTU < Total Length + 20: MUST send Fragmentation
    Needed (3/4); the MTU it reports leaves room for the 20 octets the packet grows by."""
    config = SiitConfig(ipv6_mtu=ipv6_mtu, icmp_source_v4=ANSWERING.icmp_source_v4)
    fits = bytes(v4_to_peer(UDP(sport=1, dport=2) / Raw(b"c" * (ipv6_mtu - 48)), flags="DF"))
    assert len(single(translate(fits, config))) == ipv6_mtu
    too_big = bytes(v4_to_peer(UDP(sport=1, dport=2) / Raw(b"c" * (ipv6_mtu - 47)), flags="DF"))
    result = translate(too_big, config)
    reply = assert_generated_error(result, too_big, 3, 4, DropReason.PACKET_TOO_BIG)
    assert reply[ICMP].nexthopmtu == ipv6_mtu - 20
    assert translate(too_big, SiitConfig(ipv6_mtu=ipv6_mtu)) == Drop(DropReason.PACKET_TOO_BIG)


def test_df_set_fragment_too_big_reports_room_for_fragment_header() -> None:
    """A first fragment with DF grows by 28 (IPv6 header and Fragment Header)."""
    packet = IP(src=PEER4, dst=HOST4, flags="MF+DF", proto=17) / Raw(b"d" * 1460)
    result = translate(bytes(packet), ANSWERING)
    reply = assert_generated_error(result, bytes(packet), 3, 4, DropReason.PACKET_TOO_BIG)
    assert reply[ICMP].nexthopmtu == 1500 - 28


def test_fragment_past_the_maximum_datagram_dropped() -> None:
    """RFC 791 3.1: a datagram is at most 65535 octets, so a fragment whose offset and length
    reach past that belongs to none (its IPv6 pieces' offsets would not even fit)."""
    packet = IP(src=PEER4, dst=HOST4, frag=8150, proto=17) / Raw(b"e" * 1400)
    assert translate(packet) == Drop(DropReason.IPV4_BAD_FRAGMENT)
    one_too_far = IP(src=PEER4, dst=HOST4, frag=8188, proto=17) / Raw(b"e" * 12)
    assert translate(one_too_far) == Drop(DropReason.IPV4_BAD_FRAGMENT)
    last = IP(src=PEER4, dst=HOST4, frag=8188, proto=17) / Raw(b"e" * 11)
    out = single(translate(last))
    assert IPv6(out)[IPv6ExtHdrFragment].offset == 8188


# --- section 4.5: transport checksums -----------------------------------------------------------


def test_tcp_checksum_moved_to_ipv6_pseudo_header() -> None:
    packet = v4_to_peer(TCP(sport=443, dport=50000, seq=1, ack=2, flags="PA") / Raw(b"h" * 333))
    out = single(translate(packet))
    assert_checksum_valid(out, TCP)


def test_udp_checksum_moved_to_ipv6_pseudo_header() -> None:
    packet = v4_to_peer(UDP(sport=53, dport=5353) / Raw(b"answer" * 11))
    out = single(translate(packet))
    assert_checksum_valid(out, UDP)


@pytest.mark.parametrize("layer", [TCP, UDP])
def test_wrong_checksum_stays_wrong(layer: type[Packet]) -> None:
    """RFC 1624 incremental update: a corrupted segment arrives just as corrupted, so the
    receiver drops it (the translator never launders a bad checksum). scapy's checksum over
    pseudo-header and segment finds the same residue on both sides."""
    header = layer(sport=1000, dport=2000)
    good = v4_to_peer(header / Raw(b"payload bytes!"))
    correct = IP(bytes(good))[layer].chksum
    bad = v4_to_peer(
        layer(sport=1000, dport=2000, chksum=correct ^ 0x0101) / Raw(b"payload bytes!")
    )
    bad_bytes = bytes(bad)
    residue4 = in4_chksum(bad.proto, IP(bad_bytes), bad_bytes[20:])
    assert residue4 != 0
    out = single(translate(bad_bytes))
    parsed = IPv6(out)
    residue6 = in6_chksum(parsed.nh, parsed[layer], out[40:])
    assert residue6 == residue4


def test_udp_zero_checksum_dropped_by_default() -> None:
    """RFC 7915 4.5 option 1 (the default): drop a checksum-less UDP datagram."""
    packet = v4_to_peer(UDP(sport=1, dport=2, chksum=0) / Raw(b"no checksum"))
    assert CONFIG.udp_zero_checksum is UdpZeroChecksum.DROP
    assert translate(packet) == Drop(DropReason.UDP_ZERO_CHECKSUM)


def test_udp_zero_checksum_computed_when_configured() -> None:
    """RFC 7915 4.5 option 2: calculate an IPv6 checksum and forward."""
    packet = v4_to_peer(UDP(sport=1, dport=2, chksum=0) / Raw(b"no checksum"))
    out = single(translate(packet, SiitConfig(udp_zero_checksum=UdpZeroChecksum.COMPUTE)))
    assert IPv6(out)[UDP].chksum != 0
    assert_checksum_valid(out, UDP)


@pytest.mark.parametrize("policy", list(UdpZeroChecksum))
def test_udp_zero_checksum_fragment_gets_admin_prohibited(policy: UdpZeroChecksum) -> None:
    """RFC 7915 4.5: the first fragment of a zero-checksum datagram SHOULD be dropped and logged
    (not "silently"), so 4.4's default error, 3/13, goes back to the sender, quoting it."""
    header = bytes(UDP(sport=1, dport=2, len=8 + 2000, chksum=0))
    first = raw_bytes(IP(src=PEER4, dst=HOST4, proto=17, flags="MF") / Raw(header + b"f" * 992))
    config = SiitConfig(udp_zero_checksum=policy, icmp_source_v4=ANSWERING.icmp_source_v4)
    result = translate(first, config)
    assert_generated_error(result, first, 3, 13, DropReason.UDP_ZERO_CHECKSUM)


def test_udp_zero_checksum_gets_admin_prohibited_when_dropping() -> None:
    """RFC 7915 4.5 option 1 (drop and log) is a drop 4.4 answers with 3/13."""
    packet = raw_bytes(v4_to_peer(UDP(sport=1, dport=2, chksum=0) / Raw(b"no checksum")))
    result = translate(packet, ANSWERING)
    assert_generated_error(result, packet, 3, 13, DropReason.UDP_ZERO_CHECKSUM)


@pytest.mark.parametrize("policy", list(UdpZeroChecksum))
def test_udp_zero_checksum_fragment_dropped(policy: UdpZeroChecksum) -> None:
    """RFC 7915 4.5: a stateless translator cannot checksum a fragmented datagram: the first
    fragment with a zero checksum SHOULD be dropped whatever the configuration."""
    header = bytes(UDP(sport=1, dport=2, len=8 + 2000, chksum=0))
    first = IP(src=PEER4, dst=HOST4, proto=17, flags="MF") / Raw(header + b"f" * 992)
    result = translate(first, SiitConfig(udp_zero_checksum=policy))
    assert result == Drop(DropReason.UDP_ZERO_CHECKSUM)


def test_udp_non_first_fragment_passes_untouched() -> None:
    """Only the first fragment carries the checksum; later ones are data."""
    data = b"\x00" * 64
    later = IP(src=PEER4, dst=HOST4, proto=17, frag=125) / Raw(data)
    out = single(translate(later))
    assert out[48:] == data


@pytest.mark.parametrize(
    ("layer", "length"), [(6, 0), (6, 17), (17, 0), (17, 7)], ids=["tcp0", "tcp17", "udp0", "udp7"]
)
def test_transport_header_too_short_dropped(layer: int, length: int) -> None:
    packet = IP(src=PEER4, dst=HOST4, proto=layer) / Raw(b"\x01" * length)
    assert translate(packet) == Drop(DropReason.L4_TRUNCATED)


# --- section 4.2: ICMPv4 -> ICMPv6 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("v4_type", "layer"), [(8, ICMPv6EchoRequest), (0, ICMPv6EchoReply)], ids=["request", "reply"]
)
def test_echo_translated(v4_type: int, layer: type[Packet]) -> None:
    """RFC 7915 4.2: Echo 8/0 -> 128/129, identifier, sequence and data kept, checksum now over
    the ICMPv6 pseudo-header."""
    data = bytes(range(56))
    packet = v4_to_peer(ICMP(type=v4_type, code=0, id=0x4242, seq=7) / Raw(data))
    out = single(translate(packet))
    parsed = IPv6(out)
    assert parsed.nh == 58
    echo = parsed[layer]
    assert (echo.code, echo.id, echo.seq, echo.data) == (0, 0x4242, 7, data)
    assert_checksum_valid(out, layer)
    assert icmpv6_residual(out) == 0


def test_icmp_bad_checksum_dropped() -> None:
    packet = v4_to_peer(ICMP(type=8, chksum=0x1234) / Raw(b"ping"))
    assert translate(packet) == Drop(DropReason.ICMP_BAD_CHECKSUM)


def test_icmp_truncated_dropped() -> None:
    packet = IP(src=PEER4, dst=HOST4, proto=1) / Raw(b"\x08\x00\xf7")
    assert translate(packet) == Drop(DropReason.ICMP_TRUNCATED)


# RFC 7915 section 4.2, "ICMPv4 error messages", written out from the RFC text (not from
# onm's table): (ICMPv4 type, code) -> (ICMPv6 type, code).
RFC7915_ERRORS_4TO6 = {
    (3, 0): (1, 0),  # Net Unreachable -> No route to destination
    (3, 1): (1, 0),  # Host Unreachable
    (3, 2): (4, 1),  # Protocol Unreachable -> Parameter Problem, pointer to Next Header
    (3, 3): (1, 4),  # Port Unreachable
    (3, 4): (2, 0),  # Fragmentation Needed -> Packet Too Big
    (3, 5): (1, 0),  # Source Route Failed
    (3, 6): (1, 0),
    (3, 7): (1, 0),
    (3, 8): (1, 0),
    (3, 9): (1, 1),  # Communication with Destination Network Administratively Prohibited
    (3, 10): (1, 1),  # ... Host Administratively Prohibited
    (3, 11): (1, 0),
    (3, 12): (1, 0),
    (3, 13): (1, 1),  # Communication Administratively Prohibited
    (3, 15): (1, 1),  # Precedence cutoff in effect
    (11, 0): (3, 0),  # Time Exceeded: type 3, code unchanged
    (11, 1): (3, 1),
    (12, 0): (4, 0),  # Parameter Problem, pointer via Figure 3
    (12, 2): (4, 0),  # Bad length, pointer via Figure 3
}

# RFC 7915 section 4.2: everything that is silently dropped.
RFC7915_DROPPED_4TO6 = [
    (3, 14),  # Host Precedence Violation
    (3, 16),  # other codes
    (3, 255),
    (4, 0),  # Source Quench: obsoleted
    (5, 0),  # Redirect: single hop
    (5, 1),
    (6, 0),  # Alternative Host Address
    (9, 0),  # Router Advertisement: single hop
    (10, 0),  # Router Solicitation: single hop
    (12, 1),  # Missing a required option
    (12, 3),  # other codes
    (13, 0),  # Timestamp: obsoleted
    (14, 0),  # Timestamp Reply
    (15, 0),  # Information Request
    (16, 0),  # Information Reply
    (17, 0),  # Address Mask Request
    (18, 0),  # Address Mask Reply
    (1, 0),  # unknown types
    (2, 0),
    (7, 0),
    (19, 0),
    (30, 0),
    (40, 0),
    (42, 0),
    (253, 0),
    (255, 0),
]

V6_LAYERS = {
    1: ICMPv6DestUnreach,
    2: ICMPv6PacketTooBig,
    3: ICMPv6TimeExceeded,
    4: ICMPv6ParamProblem,
}


def _error_rest(v4_type: int, code: int) -> dict[str, int]:
    """ICMPv4 fields that make the error translatable: a Figure 3 pointer, an MTU."""
    if v4_type == 12:
        return {"ptr": 9}
    if (v4_type, code) == (3, 4):
        return {"nexthopmtu": 1400}
    return {}


def _translate_error(v4_type: int, code: int) -> bytes:
    inner = quoted(UDP(sport=4000, dport=53) / Raw(b"question"))
    error = icmp_error(ICMP(type=v4_type, code=code, **_error_rest(v4_type, code)), inner)
    return single(translate(error))


@pytest.mark.parametrize(("key", "expected"), sorted(RFC7915_ERRORS_4TO6.items()))
def test_error_translated_as_rfc_says(key: tuple[int, int], expected: tuple[int, int]) -> None:
    """RFC 7915 4.2: each ICMPv4 error type/code becomes the ICMPv6 one the RFC lists, with the
    checksum now over the ICMPv6 pseudo-header (verified by scapy)."""
    out = _translate_error(*key)
    assert (out[40], out[41]) == expected
    assert (IPv6(out).src, IPv6(out).dst) == (ROUTER6, HOST6)
    assert isinstance(IPv6(out)[IPv6].payload, V6_LAYERS[expected[0]])
    assert icmpv6_residual(out) == 0


@pytest.mark.parametrize(
    ("key", "mapping"), sorted(icmp_map.ERRORS_4TO6.items()), ids=lambda v: str(v)
)
def test_every_table_row_translates(key: tuple[int, int], mapping: icmp_map.Mapping) -> None:
    """Every row of `icmp_map.ERRORS_4TO6` produces what the row says, and is in the RFC list."""
    assert RFC7915_ERRORS_4TO6[key] == (mapping.type, mapping.code)
    out = _translate_error(*key)
    assert (out[40], out[41]) == (mapping.type, mapping.code)
    assert icmpv6_residual(out) == 0


@pytest.mark.parametrize(("v4_type", "code"), RFC7915_DROPPED_4TO6)
def test_untranslatable_icmp_silently_dropped(v4_type: int, code: int) -> None:
    """RFC 7915 4.2: obsolete, single-hop and unknown messages are silently dropped, even with
    the translator's own ICMP errors enabled."""
    body = quoted(UDP(sport=1, dport=2)) if v4_type in (3, 4, 5, 11, 12) else b"\x00" * 32
    packet = icmp_error(ICMP(type=v4_type, code=code), body)
    assert translate(packet, ANSWERING) == Drop(DropReason.ICMP_UNTRANSLATABLE)


def test_igmp_dropped() -> None:
    """RFC 7915 4.2 IGMP: single-hop or multicast routing: SHOULD be silently dropped."""
    igmp = bytes.fromhex("1164ee9b00000000")  # Membership Query, RFC 2236
    packet = IP(src=PEER4, dst=HOST4, proto=2) / Raw(igmp)
    assert translate(packet, ANSWERING) == Drop(DropReason.PROTOCOL_UNTRANSLATABLE)
    # The usual IGMP packet (TTL 1, to a group) is discarded without a word either.
    packet = IP(src=PEER4, dst="224.0.0.1", proto=2, ttl=1) / Raw(igmp)
    assert isinstance(translate(packet, ANSWERING), Drop)


def test_protocol_unreachable_points_at_next_header() -> None:
    """RFC 7915 4.2 code 2: Parameter Problem 4/1, pointer to the IPv6 Next Header (octet 6)."""
    out = IPv6(_translate_error(3, 2))
    assert (out[ICMPv6ParamProblem].code, out[ICMPv6ParamProblem].ptr) == (1, 6)


def test_unused_and_length_octets_cleared() -> None:
    """RFC 7915 4.2: an error without extensions arrives with its unused field zero."""
    inner = quoted(UDP(sport=1, dport=2))
    error = IP(src=ROUTER4, dst=HOST4, proto=1) / Raw(icmpv4(3, 1, b"\x00\x00\x12\x34", inner))
    out = single(translate(error))
    assert out[44:48] == bytes(4)
    assert icmpv6_residual(out) == 0


# RFC 7915 4.2 code 4: MTU = min(advertised + 20, IPv6 next hop, IPv4 next hop + 20), and
# (section 5, first bullet) never below 1280.
FRAGMENTATION_NEEDED_MTUS = [
    # (advertised, ipv6_mtu, ipv4_mtu, expected)
    (1400, 1500, 1500, 1420),
    (1480, 1500, 1500, 1500),
    (1500, 1500, 1500, 1500),
    (1492, 9000, 9000, 1512),
    (8000, 9000, 9000, 8020),
    (9000, 9000, 1500, 1520),
    (1400, 1300, 1500, 1300),
    (1400, 9000, 1300, 1320),
    (1260, 1500, 1500, 1280),
    (576, 1500, 1500, 1280),
    (68, 1500, 1500, 1280),
]


@pytest.mark.parametrize(
    ("advertised", "ipv6_mtu", "ipv4_mtu", "expected"), FRAGMENTATION_NEEDED_MTUS
)
def test_fragmentation_needed_mtu(
    advertised: int, ipv6_mtu: int, ipv4_mtu: int, expected: int
) -> None:
    inner = quoted(TCP(sport=1, dport=2) / Raw(b"g" * 1452), flags="DF")
    error = icmp_error(ICMP(type=3, code=4, nexthopmtu=advertised), inner[:548])
    config = SiitConfig(ipv6_mtu=ipv6_mtu, ipv4_mtu=ipv4_mtu)
    out = single(translate(error, config))
    too_big = IPv6(out)[ICMPv6PacketTooBig]
    assert (too_big.type, too_big.code, too_big.mtu) == (2, 0, expected)
    assert icmpv6_residual(out) == 0


# RFC 1191 section 7, Table 7-1 plateaus; RFC 7915 4.2: "the greatest plateau value that is less
# than the returned Total Length", never below the IPv6 minimum of 1280.
PLATEAU_CASES = [
    (65535, 32000),
    (32001, 32000),
    (32000, 17914),
    (9000, 8166),
    (4400, 4352),
    (2100, 2002),
    (1500, 1492),
    (1493, 1492),
    (1492, 1280),  # plateau 1006 -> clamped to 1280
    (600, 1280),
    (68, 1280),
]


@pytest.mark.parametrize(("total_length", "expected"), PLATEAU_CASES)
def test_fragmentation_needed_without_mtu_uses_plateau(total_length: int, expected: int) -> None:
    """RFC 7915 4.2: a router that does not do RFC 1191 reports MTU 0; the translator MUST use
    the RFC 1191 plateaus with the quoted Total Length."""
    inner = quoted(UDP(sport=1, dport=2) / Raw(b"\x00" * 100), flags="DF")
    inner = inner[:2] + struct.pack("!H", total_length) + inner[4:]  # as the router saw it
    error = icmp_error(ICMP(type=3, code=4, nexthopmtu=0), inner)
    config = SiitConfig(ipv6_mtu=65535, ipv4_mtu=65535)
    out = single(translate(error, config))
    assert IPv6(out)[ICMPv6PacketTooBig].mtu == expected


# RFC 7915 section 4.2 Figure 3, written out from the RFC: IPv4 header octet -> IPv6 header octet
# (None: "n/a", the message is silently dropped).
FIGURE_3: dict[int, int | None] = {
    0: 0,  # Version/IHL -> Version/Traffic Class
    1: 1,  # Type Of Service -> Traffic Class/Flow Label
    2: 4,  # Total Length -> Payload Length
    3: 4,
    4: None,  # Identification
    5: None,
    6: None,  # Flags/Fragment Offset
    7: None,  # Fragment Offset
    8: 7,  # Time to Live -> Hop Limit
    9: 6,  # Protocol -> Next Header
    10: None,  # Header Checksum
    11: None,
    12: 8,  # Source Address
    13: 8,
    14: 8,
    15: 8,
    16: 24,  # Destination Address
    17: 24,
    18: 24,
    19: 24,
}


@pytest.mark.parametrize("code", [0, 2])
@pytest.mark.parametrize(("pointer", "expected"), sorted(FIGURE_3.items()))
def test_parameter_problem_pointer(code: int, pointer: int, expected: int | None) -> None:
    """RFC 7915 4.2 Parameter Problem codes 0 and 2: 4/0 with the pointer through Figure 3;
    an octet without an IPv6 counterpart is silently dropped."""
    inner = quoted(UDP(sport=1, dport=2))
    result = translate(icmp_error(ICMP(type=12, code=code, ptr=pointer), inner))
    if expected is None:
        assert result == Drop(DropReason.ICMP_UNTRANSLATABLE)
        return
    out = single(result)
    problem = IPv6(out)[ICMPv6ParamProblem]
    assert (problem.type, problem.code, problem.ptr) == (4, 0, expected)
    assert icmpv6_residual(out) == 0


@pytest.mark.parametrize("pointer", [20, 23, 40, 59, 60, 255])
def test_parameter_problem_pointer_past_the_header_dropped(pointer: int) -> None:
    """Figure 3 lists no options and no payload octets: not listed, so silently dropped."""
    inner = quoted(UDP(sport=1, dport=2), options=[IPOption_NOP()] * 4)
    result = translate(icmp_error(ICMP(type=12, code=0, ptr=pointer), inner))
    assert result == Drop(DropReason.ICMP_UNTRANSLATABLE)


# --- section 4.3: the packet inside ICMP errors -------------------------------------------------


def test_inner_packet_translated() -> None:
    """RFC 7915 4.3: the quoted packet is translated like a normal one: addresses mapped in its
    own direction (its source was a destination), TTL left alone, checksum moved (scapy), and
    the outer Payload Length follows the longer quote."""
    mapper = SplitMapper()
    segment = TCP(sport=50000, dport=443, seq=99, flags="S") / Raw(b"i" * 40)
    inner = quoted(segment, ttl=3, tos=0x28, id=0x5151)
    error = icmp_error(ICMP(type=11, code=0), inner)
    out = single(translate(error, mapper=mapper))
    outer = IPv6(out)
    assert outer.hlim == 63  # the error itself is forwarded: decremented
    assert ipaddress.IPv6Address(outer.src) == ipaddress.IPv6Address("2001:db8:5::" + ROUTER4)
    assert ipaddress.IPv6Address(outer.dst) == ipaddress.IPv6Address("2001:db8:d::" + HOST4)
    assert outer.plen == 8 + 40 + 60 == len(out) - 40
    assert len(out) == len(bytes(error)) + 20 + 20
    inner6 = IPv6(out[48:])
    assert ipaddress.IPv6Address(inner6.src) == ipaddress.IPv6Address("2001:db8:d::" + HOST4)
    assert ipaddress.IPv6Address(inner6.dst) == ipaddress.IPv6Address("2001:db8:5::" + PEER4)
    assert (inner6.hlim, inner6.tc, inner6.fl, inner6.nh, inner6.plen) == (3, 0x28, 0, 6, 60)
    expected = IPv6(src=inner6.src, dst=inner6.dst, nh=6, hlim=3, tc=0x28) / segment
    assert out[88:] == bytes(expected)[40:]
    assert icmpv6_residual(out) == 0


def test_inner_udp_checksum_moved() -> None:
    datagram = UDP(sport=33434, dport=33435) / Raw(b"traceroute")
    inner = quoted(datagram, ttl=1)
    out = single(translate(icmp_error(ICMP(type=11, code=0), inner)))
    expected = IPv6(src=HOST6, dst=PEER6, hlim=1) / datagram
    assert out[48:] == bytes(expected)
    assert icmpv6_residual(out) == 0


def test_inner_echo_retyped() -> None:
    """RFC 7915 4.3 with 4.2: a quoted Echo Request becomes ICMPv6 128 with the ICMPv6
    checksum (as scapy computes it for the full message)."""
    echo = ICMP(type=8, id=0x77, seq=3) / Raw(b"ping" * 16)
    inner = quoted(echo, ttl=1)
    out = single(translate(icmp_error(ICMP(type=11, code=0), inner)))
    expected = IPv6(src=HOST6, dst=PEER6, hlim=1) / ICMPv6EchoRequest(
        id=0x77, seq=3, data=b"ping" * 16
    )
    assert out[48:] == bytes(expected)
    assert icmpv6_residual(out) == 0


@pytest.mark.parametrize("keep", [0, 4, 8, 18, 28, 100])
def test_truncated_inner_packet(keep: int) -> None:
    """RFC 792 quotes the IP header and 64 bits or more: whatever is there is translated, the
    inner Payload Length still says how long the original was, the checksum moved when it is
    there (compared with scapy on the whole original)."""
    segment = TCP(sport=1234, dport=80, flags="PA") / Raw(b"j" * 200)
    full = quoted(segment, ttl=9)
    error = icmp_error(ICMP(type=3, code=1), full[: 20 + keep])
    out = single(translate(error))
    expected = bytes(IPv6(src=HOST6, dst=PEER6, hlim=9) / segment)
    assert out[48:] == expected[: 40 + keep]
    assert IPv6(out[48:]).plen == 220
    assert IPv6(out).plen == 8 + 40 + keep
    assert icmpv6_residual(out) == 0


def test_inner_fragment_keeps_its_fragment_header() -> None:
    """A quoted IPv4 fragment is quoted as an IPv6 fragment (RFC 7915 4.1 Fragment Header)."""
    inner = quoted(Raw(b"k" * 64), proto=17, id=0x0A0B, frag=10, flags="MF")
    out = single(translate(icmp_error(ICMP(type=11, code=1), inner)))
    inner6 = IPv6(out[48:])
    assert inner6.nh == 44
    fragment = inner6[IPv6ExtHdrFragment]
    assert (fragment.nh, fragment.offset, fragment.m, fragment.id) == (17, 10, 1, 0x0A0B)
    assert inner6.plen == 8 + 64
    assert out[96:] == b"k" * 64
    quoted_icmp = quoted(Raw(b"\x08" + b"k" * 63), proto=1, frag=10)
    out = single(translate(icmp_error(ICMP(type=11, code=1), quoted_icmp)))
    assert IPv6(out[48:])[IPv6ExtHdrFragment].nh == 58


def test_nested_icmp_error_dropped() -> None:
    """RFC 7915 4.3: stop at the first embedded header; an error quoting an error is dropped."""
    innermost = quoted(UDP(sport=1, dport=2))
    inner_error = IP(src=HOST4, dst=PEER4) / ICMP(type=3, code=3) / Raw(innermost)
    error = icmp_error(ICMP(type=11, code=0), bytes(inner_error))
    assert translate(error, ANSWERING) == Drop(DropReason.ICMP_ERROR_NESTED)


def test_inner_untranslatable_icmp_dropped() -> None:
    inner = quoted(ICMP(type=13) / Raw(b"\x00" * 12))  # Timestamp: obsolete in ICMPv6
    error = icmp_error(ICMP(type=3, code=1), inner)
    assert translate(error) == Drop(DropReason.ICMP_UNTRANSLATABLE)


@pytest.mark.parametrize("keep", [0, 10, 19])
def test_inner_header_too_short_dropped(keep: int) -> None:
    full = quoted(UDP(sport=1, dport=2))
    error = icmp_error(ICMP(type=3, code=1), full[:keep])
    assert translate(error) == Drop(DropReason.IPV4_TRUNCATED)


def test_inner_unmappable_dropped() -> None:
    known = {bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])}
    mapper = SubstrateMapper(7, {a: embed_ipv4(0xFD00_0000_0000_0001, 7, a) for a in known})
    inner = bytes(IP(src="10.0.0.2", dst="10.9.9.9") / UDP(sport=1, dport=2))
    error = IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=1) / Raw(inner)
    assert translate(error, mapper=mapper) == Drop(DropReason.ADDRESS_UNMAPPABLE)


def test_icmpv6_error_limited_to_1280() -> None:
    """RFC 4443 2.4 (c): the translated error is cut to the IPv6 minimum MTU (an ICMPv4 error
    that quotes a whole 1500-octet packet grows by 40 otherwise)."""
    inner = quoted(UDP(sport=1, dport=2) / Raw(b"l" * 1472), ttl=1)
    error = icmp_error(ICMP(type=11, code=0), inner)
    assert len(bytes(error)) == 1528
    out = single(translate(error))
    assert len(out) == 1280
    parsed = IPv6(out)
    assert parsed.plen == 1240
    assert IPv6(out[48:]).plen == 1480
    assert icmpv6_residual(out) == 0


def _extension() -> bytes:
    """An RFC 4884 extension structure: header (version 2) and one RFC 4950 MPLS object."""
    objects = struct.pack("!HBB", 8, 1, 1) + struct.pack("!I", 16 << 12 | 1 << 8 | 64)
    header = bytearray(b"\x20\x00\x00\x00" + objects)
    header[2:4] = struct.pack("!H", checksum(bytes(header)))
    return bytes(header)


@pytest.mark.parametrize(
    ("v4_type", "code", "v6_type"), [(11, 0, 3), (3, 1, 1), (3, 3, 1)], ids=["te", "du", "port"]
)
def test_rfc4884_extension_carried(v4_type: int, code: int, v6_type: int) -> None:
    """RFC 7915 4.2 "ICMP Error Payload": the extension travels on (opaque) and the length
    attribute is adjusted: 32-bit words in ICMPv4 octet 5 become 64-bit words in ICMPv6 octet 4,
    over the longer translated datagram (RFC 4884 section 4)."""
    inner = quoted(UDP(sport=1, dport=2) / Raw(b"m" * 300))[:128]
    extension = _extension()
    error = icmp_error(ICMP(type=v4_type, code=code, length=32), inner + extension)
    assert bytes(error)[25] == 32
    out = single(translate(error))
    assert out[40] == v6_type
    words = out[44]
    assert words == (128 + 20 + 4) // 8  # 148 octets, padded to a 64-bit boundary
    assert out[48 + words * 8 :] == extension
    assert (
        out[48 : 48 + 148]
        == bytes(IPv6(src=HOST6, dst=PEER6) / UDP(sport=1, dport=2) / Raw(b"m" * 300))[:148]
    )
    assert out[48 + 148 : 48 + words * 8] == bytes(4)
    assert icmpv6_residual(out) == 0


def test_rfc4884_short_original_padded_to_128_octets() -> None:
    """RFC 4884 section 4: with an extension, the original datagram field holds at least 128
    octets (zero padded); receivers ignore extensions after a shorter one."""
    inner = quoted(UDP(sport=1, dport=2) / Raw(b"n" * 32))  # 60 octets, padded to 128 in v4
    extension = _extension()
    body = inner + bytes(128 - len(inner)) + extension
    out = single(translate(icmp_error(ICMP(type=11, code=0, length=32), body)))
    assert out[44] == 128 // 8
    assert out[48 : 48 + 80] == bytes(
        IPv6(src=HOST6, dst=PEER6) / UDP(sport=1, dport=2) / Raw(b"n" * 32)
    )
    assert out[48 + 80 : 48 + 128] == bytes(48)
    assert out[48 + 128 :] == extension
    assert icmpv6_residual(out) == 0


def test_rfc4884_extension_without_ipv6_length_attribute_left_out() -> None:
    """Packet Too Big and Parameter Problem have no length attribute in ICMPv6 (RFC 4884
    section 4 gives one to Destination Unreachable and Time Exceeded only): the extension
    cannot be delimited and is left out."""
    inner = quoted(UDP(sport=1, dport=2) / Raw(b"o" * 300), flags="DF")[:128]
    body = inner + _extension()
    too_big = single(translate(icmp_error(ICMP(type=3, code=4, length=32, nexthopmtu=1400), body)))
    assert (too_big[40], IPv6(too_big)[ICMPv6PacketTooBig].mtu) == (2, 1420)
    problem = single(translate(icmp_error(ICMP(type=12, ptr=8, length=32), body)))
    assert (problem[40], IPv6(problem)[ICMPv6ParamProblem].ptr) == (4, 7)
    for out in (too_big, problem):
        assert len(out) == 48 + 148
        assert icmpv6_residual(out) == 0


# Shapes of an independent translator's RFC 7915 vectors (Jool graybox "id"): UDP payload of
# the quoted packet, ICMPv4 length attribute and extension length in; ICMPv6 length attribute,
# translated octets kept and error size out. Extensions are opaque structures of that length.
@pytest.mark.parametrize(
    ("payload", "words_v4", "extension", "words_v6", "quote_v6", "size"),
    [
        (104, 33, 40, 19, 152, 240),  # both fit, no padding
        (552, 145, 640, 74, 592, 1280),  # the quote gives way to the extension
        (992, 255, 200, 129, 1032, 1280),  # the longest ICMPv4 quote, cut by 8
        (992, 255, 1104, 16, 128, 1280),  # cut to the 128-octet floor
        (100, 32, 1105, 0, 148, 196),  # no room beside 128 octets: extension left out whole
        (0, 7, 40, 16, 48, 216),  # too short a quote (RFC 4884 says 128): padded to 128
    ],
    ids=["fits", "quote-cut", "longest-quote-cut", "floor", "ext-left-out", "short-padded"],
)
def test_rfc4884_extension_within_1280(
    payload: int, words_v4: int, extension: int, words_v6: int, quote_v6: int, size: int
) -> None:
    """RFC 4443 2.4 (c) (1280 octets) and RFC 4884 section 4 (at least 128 octets, 64-bit
    words): the translated quote gives way to the extension, never the other way round; an
    extension that does not fit beside 128 octets is left out whole (a cut one would fail its
    own checksum, RFC 4884 section 7) and the length attribute is zero. RFC 7915 4.2: the
    extension is carried as opaque octets and the length attribute adjusted."""
    datagram = UDP(sport=1, dport=2) / Raw((bytes(range(256)) * 4)[:payload])
    field = quoted(datagram)[: words_v4 * 4].ljust(words_v4 * 4, b"\0")
    structure = (bytes.fromhex("20000000") + bytes(extension))[:extension]
    error = icmp_error(ICMP(type=3, code=3, length=words_v4), field + structure)
    out = single(translate(error))
    assert len(out) == IPv6(out).plen + 40 == size
    assert icmpv6_residual(out) == 0
    assert (out[40], out[41], out[44]) == (1, 4, words_v6)
    expected = bytes(IPv6(src=HOST6, dst=PEER6) / datagram)
    assert out[48 : 48 + quote_v6] == expected[:quote_v6]
    if words_v6:
        assert out[48 + quote_v6 : 48 + words_v6 * 8] == bytes(words_v6 * 8 - quote_v6)
        assert out[48 + words_v6 * 8 :] == structure
    else:
        assert len(out) == 48 + quote_v6


def test_fragmented_icmp_dropped() -> None:
    """RFC 7915 1.2: fragmented ICMP is not translated (the checksum covers what is missing)."""
    echo = bytes(ICMP(type=8, id=1, seq=1) / Raw(b"q" * 2000))
    first = IP(src=PEER4, dst=HOST4, proto=1, flags="MF") / Raw(echo[:1000])
    later = IP(src=PEER4, dst=HOST4, proto=1, frag=125) / Raw(echo[1000:])
    for packet in (first, later):
        assert translate(packet, ANSWERING) == Drop(DropReason.ICMP_FRAGMENTED)


# --- section 4.4: errors the translator sends itself ---------------------------------------------


def test_no_error_about_an_icmp_error() -> None:
    """RFC 7915 4.4 (and RFC 1812 4.3.2.7): never an ICMP error about an ICMP error."""
    inner = quoted(UDP(sport=1, dport=2))
    expired = icmp_error(ICMP(type=3, code=3), inner, ttl=1)
    assert translate(expired, ANSWERING) == Drop(DropReason.TTL_EXPIRED)
    routed = icmp_error(
        ICMP(type=3, code=3), inner, options=[IPOption_LSRR(routers=["203.0.113.7"])]
    )
    assert translate(routed, ANSWERING) == Drop(DropReason.IPV4_SOURCE_ROUTE)


def test_echo_is_answered() -> None:
    """ICMP queries are not errors: a ping with TTL 1 gets Time Exceeded (traceroute -I)."""
    packet = bytes(v4_to_peer(ICMP(type=8, id=1, seq=1), ttl=1))
    result = translate(packet, ANSWERING)
    assert_generated_error(result, packet, 11, 0, DropReason.TTL_EXPIRED)


def test_no_error_about_a_non_first_fragment() -> None:
    """RFC 1812 4.3.2.7: only the first fragment may cause an ICMP error."""
    later = IP(src=PEER4, dst=HOST4, proto=17, frag=100, ttl=1) / Raw(b"r" * 100)
    assert translate(later, ANSWERING) == Drop(DropReason.TTL_EXPIRED)
    first = IP(src=PEER4, dst=HOST4, proto=17, flags="MF", ttl=1) / Raw(b"r" * 104)
    assert isinstance(translate(first, ANSWERING), IcmpError)


@pytest.mark.parametrize("destination", ["224.0.0.5", "239.1.2.3", "255.255.255.255"])
def test_no_error_about_a_group_destination(destination: str) -> None:
    """RFC 1812 4.3.2.7: no ICMP error about a packet sent to a multicast or broadcast group."""
    mapper = Rfc6052Mapper("2001:db8:122:344::/96")
    packet = IP(src=PEER4, dst=destination, ttl=1) / UDP(sport=1, dport=2)
    assert translate(packet, ANSWERING, mapper) == Drop(DropReason.TTL_EXPIRED)


# --- malformed input ---------------------------------------------------------------------------


def _with_header_checksum(header: bytes) -> bytes:
    ihl = (header[0] & 0x0F) * 4
    zeroed = header[:10] + b"\x00\x00" + header[12:]
    return zeroed[:10] + struct.pack("!H", checksum(zeroed[:ihl])) + zeroed[12:]


def _ipv4(
    version_ihl: int = 0x45, total: int = 28, options: bytes = b"", tail: bytes = b""
) -> bytes:
    addresses = ipaddress.IPv4Address(PEER4).packed + ipaddress.IPv4Address(HOST4).packed
    header = struct.pack("!BBHHHBBH", version_ihl, 0, total, 0, 0, 64, 17, 0) + addresses
    return _with_header_checksum(header + options + tail)


MALFORMED = [
    ("empty", b"", DropReason.IPV4_TRUNCATED),
    ("19 octets", _ipv4()[:19], DropReason.IPV4_TRUNCATED),
    ("version 6", _ipv4(0x65), DropReason.IPV4_BAD_VERSION),
    ("ihl 4", _ipv4(0x44), DropReason.IPV4_BAD_HEADER_LENGTH),
    ("ihl 15 in 28 octets", _ipv4(0x4F, 60, tail=bytes(8)), DropReason.IPV4_TRUNCATED),
    ("total < ihl", _ipv4(total=19, tail=bytes(8)), DropReason.IPV4_BAD_TOTAL_LENGTH),
    ("total > length", _ipv4(total=100, tail=bytes(8)), DropReason.IPV4_TRUNCATED),
    (
        "bad header checksum",
        _ipv4(tail=bytes(UDP(sport=1, dport=2)))[:10] + b"\x12\x34" + bytes(12 + 8),
        DropReason.IPV4_BAD_CHECKSUM,
    ),
    (
        "option length 0",
        _ipv4(0x46, 32, b"\x07\x00\x00\x00", bytes(8)),
        DropReason.IPV4_BAD_OPTIONS,
    ),
    (
        "option past end",
        _ipv4(0x46, 32, b"\x83\x09\x04\x00", bytes(8)),
        DropReason.IPV4_BAD_OPTIONS,
    ),
]


@pytest.mark.parametrize(
    ("data", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_ipv4_dropped(data: bytes, reason: DropReason) -> None:
    assert translate(data, ANSWERING) == Drop(reason)


def test_trailing_link_padding_ignored() -> None:
    """Bytes after Total Length (Ethernet minimum-frame padding) are not part of the packet."""
    packet = bytes(v4_to_peer(UDP(sport=1, dport=2)))
    assert translate(packet + bytes(18)) == translate(packet)


# --- properties ----------------------------------------------------------------------------------

unicast_v4 = st.tuples(
    st.integers(1, 223).filter(lambda first: first != 127),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
).map(lambda octets: ".".join(map(str, octets)))
ports = st.integers(0, 0xFFFF)


@st.composite
def valid_ipv4(draw: st.DrawFn) -> bytes:
    """TCP, UDP (with a checksum) or ICMP echo, small enough to need no fragmenting."""
    data = draw(st.binary(max_size=600))
    kind = draw(st.sampled_from(["tcp", "udp", "echo-request", "echo-reply"]))
    upper: Packet
    if kind == "tcp":
        upper = TCP(
            sport=draw(ports),
            dport=draw(ports),
            seq=draw(st.integers(0, 2**32 - 1)),
            flags=draw(st.integers(0, 0xFF)),
        )
    elif kind == "udp":
        upper = UDP(sport=draw(ports), dport=draw(ports))
    else:
        upper = ICMP(type=8 if kind == "echo-request" else 0, id=draw(ports), seq=draw(ports))
    header = IP(
        src=draw(unicast_v4),
        dst=draw(unicast_v4),
        tos=draw(st.integers(0, 255)),
        ttl=draw(st.integers(1, 255)),  # TTL 0 is refused (test_..._refuses_ttl_zero)
        id=draw(st.integers(0, 0xFFFF)),
        flags=draw(st.sampled_from([0, "DF"])),
    )
    return bytes(header / upper / Raw(data))


ROUND_TRIP_MAPPERS = [Rfc6052Mapper("64:ff9b::/96"), Rfc6052Mapper("2001:db8:100::/40")]
NO_DECREMENT = SiitConfig(decrement_ttl=False)


@FAST
@given(packet=valid_ipv4(), mapper=st.sampled_from(ROUND_TRIP_MAPPERS))
def test_round_trip(packet: bytes, mapper: Rfc6052Mapper) -> None:
    """4 -> 6 -> 4 gives back what RFC 7915 carries: addresses, protocol, TOS, TTL (when not
    decremented) and the transport payload, checksum included, octet for octet. (DF and
    Identification are set by 5.1's own rules; the caller supplies the Identification.)"""
    original = IP(packet)
    six = single(translate_4to6(packet, mapper, NO_DECREMENT))
    if original.proto != 1:
        assert_checksum_valid(six, TCP if original.proto == 6 else UDP)
    else:
        assert icmpv6_residual(six) == 0
    back = single(translate_6to4(six, mapper, NO_DECREMENT, identification=original.id))
    parsed = IP(back)
    assert (parsed.src, parsed.dst, parsed.proto) == (original.src, original.dst, original.proto)
    assert (parsed.tos, parsed.ttl, parsed.id) == (original.tos, original.ttl, original.id)
    assert back[20:] == packet[20:]


@st.composite
def noisy_ipv4(draw: st.DrawFn) -> bytes:
    """Headers with any field values and payloads of random octets, but a right header
    checksum so the translation gets past the first check."""
    protocol = draw(st.sampled_from([1, 2, 6, 17, 58, 132]) | st.integers(0, 255))
    payload = draw(st.binary(max_size=80) | st.integers(1200, 3000).map(bytes))
    if protocol == 1 and draw(st.booleans()):
        # ICMP errors quoting random octets, or a random-ish IPv4 header.
        inner_length = draw(st.integers(0, 64))
        quote = draw(st.binary(max_size=200) | noisy_header(payload_length=inner_length))
        quote += draw(st.binary(max_size=inner_length))
        icmp_type = draw(st.sampled_from([0, 3, 8, 11, 12]) | st.integers(0, 255))
        code = draw(st.integers(0, 16))
        payload = icmpv4(icmp_type, code, draw(st.binary(min_size=4, max_size=4)), quote)
    header = draw(noisy_header(protocol=protocol, payload_length=len(payload)))
    return header + payload


@st.composite
def noisy_header(draw: st.DrawFn, protocol: int | None = None, payload_length: int = 0) -> bytes:
    options = draw(
        st.sampled_from([b"", b"\x01\x01\x01\x00", b"\x83\x07\x04\x01\x02\x03\x04\x00"])
        | st.binary(min_size=4, max_size=4)
    )
    ihl = 5 + len(options) // 4
    total = ihl * 4 + payload_length
    offset = draw(st.sampled_from([0, 0, 1, 8100, 0x1FFF]) | st.integers(0, 0x1FFF))
    frag = draw(st.integers(0, 7)) << 13 | offset
    fields = struct.pack(
        "!BBHHHBB",
        0x40 | ihl,
        draw(st.integers(0, 255)),
        total,
        draw(st.integers(0, 0xFFFF)),
        frag,
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)) if protocol is None else protocol,
    )
    addresses = draw(
        st.binary(min_size=8, max_size=8) | st.just(bytes([198, 51, 100, 10, 192, 0, 2, 33]))
    )
    return _with_header_checksum(fields + b"\x00\x00" + addresses + options)


noisy_configs = st.builds(
    SiitConfig,
    lowest_ipv6_mtu=st.sampled_from([1280, 1400, 1500]),
    ipv6_mtu=st.sampled_from([1280, 1500, 9000]),
    decrement_ttl=st.booleans(),
    udp_zero_checksum=st.sampled_from(list(UdpZeroChecksum)),
    icmp_source_v4=st.sampled_from([None, ANSWERING.icmp_source_v4]),
)


def assert_well_formed(result: Result, config: SiitConfig) -> None:
    if isinstance(result, Translated):
        for packet in result.packets:
            assert packet[0] >> 4 == 6
            assert struct.unpack_from("!H", packet, 4)[0] == len(packet) - 40
            assert len(packet) <= config.ipv6_mtu
    elif isinstance(result, IcmpError):
        assert result.packet[0] == 0x45 and len(result.packet) <= 576
        assert_ipv4_checksums_valid(result.packet)
    else:
        assert isinstance(result, Drop)


@FAST
@given(data=st.binary(max_size=120), config=noisy_configs)
def test_random_bytes_never_raise(data: bytes, config: SiitConfig) -> None:
    assert_well_formed(translate_4to6(data, MAPPER, config), config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packet=noisy_ipv4(), config=noisy_configs)
def test_noisy_packets_never_raise(packet: bytes, config: SiitConfig) -> None:
    assert_well_formed(translate_4to6(packet, MAPPER, config), config)


TRUNCATION_SAMPLES = [
    bytes(v4_to_peer(TCP(sport=1, dport=2, flags="S", options=[("MSS", 1460)]) / Raw(b"s" * 20))),
    bytes(v4_to_peer(UDP(sport=1, dport=2) / Raw(b"t" * 20))),
    bytes(v4_to_peer(ICMP(type=8, id=1, seq=2) / Raw(b"u" * 20))),
    bytes(
        icmp_error(ICMP(type=3, code=4, nexthopmtu=0), quoted(TCP(sport=1, dport=2), flags="DF"))
    ),
    bytes(icmp_error(ICMP(type=12, ptr=9), quoted(ICMP(type=8) / Raw(b"v" * 8)))),
    bytes(
        icmp_error(ICMP(type=11, length=32), quoted(UDP() / Raw(b"w" * 100))[:128] + _extension())
    ),
    bytes(
        IP(src=PEER4, dst=HOST4, proto=17, flags="MF", options=[IPOption_NOP()] * 4)
        / Raw(b"x" * 24)
    ),
]


@pytest.mark.parametrize("packet", TRUNCATION_SAMPLES)
def test_every_truncation_handled(packet: bytes) -> None:
    """Cut anywhere, with Total Length left as is (a short read) or fixed up to the cut (a
    well-formed IPv4 packet whose payload is cut): always a result, never an exception."""
    ihl = (packet[0] & 0x0F) * 4
    for cut in range(len(packet) + 1):
        result = translate_4to6(packet[:cut], MAPPER, ANSWERING)
        assert_well_formed(result, ANSWERING)
        if cut < len(packet):
            assert result == Drop(DropReason.IPV4_TRUNCATED)
        if cut >= ihl:
            fixed = packet[:2] + struct.pack("!H", cut) + packet[4:cut]
            assert_well_formed(
                translate_4to6(_with_header_checksum(fixed), MAPPER, ANSWERING), ANSWERING
            )
