"""IPv6 -> IPv4 translation (RFC 7915 section 5), with scapy as the independent oracle.

scapy builds every input and, independently of onm's checksum code, the expected output or the
checksums it must carry. Each test names the RFC sentence it checks; `docs/rfc7915-section5.md`
traces every requirement of section 5 to one of these tests. Addresses are those of RFC 6052
section 2.4 under the well-known prefix 64:ff9b::/96 (192.0.2.33, the RFC's example IPv4 address,
is the IPv4 host) and RFC 5737 documentation addresses.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, in4_chksum
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    in6_chksum,
)
from scapy.layers.ipsec import AH
from scapy.packet import Packet, Raw
from scapy.utils import checksum as scapy_checksum

from onm.addressing import HostPrefix, Location, embed_ipv4
from onm.packet.drop import DropReason
from onm.packet.mapper import Rfc6052Mapper, SubstrateMapper
from onm.packet.siit import (
    Drop,
    IcmpError,
    Result,
    SiitConfig,
    Translated,
    icmp_map,
    translate_4to6,
    translate_6to4,
)
from onm.packet.siit.generate import icmpv6_error, is_unicast_v6
from support.oracle import assert_ipv4_header_checksum
from support.oracle import single_packet as one

SETTINGS = settings(max_examples=300, deadline=None)

MAPPER = Rfc6052Mapper("64:ff9b::/96")
# RFC 6052 section 2.4, last row of the table: 192.0.2.33 under the well-known prefix.
V4_HOST = "192.0.2.33"
V4_HOST_AS_V6 = "64:ff9b::c000:221"  # 64:ff9b::192.0.2.33, as scapy writes it
# The IPv6 host: an IPv4-translatable address under the same prefix (RFC 5737 address).
V6_HOST_AS_V4 = "198.51.100.7"
V6_HOST = "64:ff9b::c633:6407"  # 64:ff9b::198.51.100.7
ROUTER_V6 = "2001:db8::1"  # not mappable: a native IPv6 router (RFC 3849 address)
TRANSLATOR_V6 = "2001:db8:ffff::1"
TRANSLATOR_V6_BYTES = bytes.fromhex("20010db8ffff00000000000000000001")
POOL_6791 = bytes((203, 0, 113, 1))  # RFC 6791 pool address (RFC 5737 TEST-NET-3)

DEFAULT = SiitConfig()
WITH_ERRORS = SiitConfig(icmp_source_v6=TRANSLATOR_V6_BYTES)
NO_TTL = SiitConfig(decrement_ttl=False)


# --- helpers -------------------------------------------------------------------------------------


def v6(
    upper: Packet | bytes, *, src: str = V6_HOST, dst: str = V4_HOST_AS_V6, **fields: int
) -> bytes:
    """An IPv6 datagram from the IPv6 host to the IPv4 host, assembled by scapy."""
    fields.setdefault("hlim", 64)
    return bytes(IPv6(src=src, dst=dst, **fields) / upper)


def v4(
    upper: Packet | bytes, *, src: str = V6_HOST_AS_V4, dst: str = V4_HOST, **fields: object
) -> bytes:
    """What the translation should give, assembled (lengths and checksums) by scapy."""
    fields.setdefault("ttl", 63)
    fields.setdefault("id", 0)  # scapy's default is 1
    return bytes(IP(src=src, dst=dst, **fields) / upper)


def translate(packet: bytes, config: SiitConfig = DEFAULT, identification: int = 0) -> Result:
    return translate_6to4(packet, MAPPER, config, identification)


def udp() -> Packet:
    return UDP(sport=40000, dport=53) / Raw(b"onm-siit-6to4 payload")


def tcp() -> Packet:
    return TCP(sport=40000, dport=443, seq=1, ack=2, flags="PA") / Raw(b"GET / HTTP/1.1\r\n\r\n")


def icmp6(
    icmp_type: int,
    code: int,
    rest: bytes,
    body: bytes,
    *,
    src: str = V6_HOST,
    dst: str = V4_HOST_AS_V6,
    hlim: int = 64,
) -> bytes:
    """Any ICMPv6 message (RFC 4443 section 2.1), checksummed by scapy."""
    message = struct.pack("!BBH4s", icmp_type, code, 0, rest) + body
    header = IPv6(src=src, dst=dst, hlim=hlim, nh=58)
    value = in6_chksum(58, header, message)
    return bytes(header / Raw(message[:2] + struct.pack("!H", value) + message[4:]))


def icmp4(icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    """An ICMPv4 message (RFC 792), checksummed by scapy."""
    message = struct.pack("!BBH4s", icmp_type, code, 0, rest) + body
    value = scapy_checksum(message)
    return message[:2] + struct.pack("!H", value) + message[4:]


def quoted_v6(upper: Packet | bytes, **fields: int) -> bytes:
    """The packet an ICMPv6 error quotes: it went from the IPv4 host to the IPv6 host."""
    return v6(upper, src=V4_HOST_AS_V6, dst=V6_HOST, **fields)


def quoted_v4(upper: Packet | bytes, **fields: object) -> bytes:
    """That packet as it should look inside the ICMPv4 error (TTL untouched)."""
    fields.setdefault("ttl", 64)
    return v4(upper, src=V4_HOST, dst=V6_HOST_AS_V4, **fields)


def l4_checksum_ok(wire: bytes) -> bool:
    """The TCP/UDP checksum of an unfragmented IPv4 datagram verifies (scapy's pseudo-header)."""
    header = IP(wire)
    return in4_chksum(header.proto, header, wire[header.ihl * 4 : header.len]) == 0


def icmpv6_checksum_ok(wire: bytes) -> bool:
    header = IPv6(wire)
    return in6_chksum(58, header, wire[40 : 40 + header.plen]) == 0


def reassemble(fragments: tuple[bytes, ...]) -> tuple[IP, bytes]:
    """First fragment's header and the data of a whole set of IPv4 fragments (RFC 791)."""
    ordered = sorted(fragments, key=lambda wire: IP(wire).frag)
    data = b""
    for wire in ordered:
        header = IP(wire)
        assert header.frag * 8 == len(data), "fragments must be contiguous"
        assert bool(header.flags.MF) is (wire is not ordered[-1])
        data += wire[header.ihl * 4 : header.len]
    return IP(ordered[0]), data


# --- 5.1: the IPv4 header ------------------------------------------------------------------------


def test_udp_datagram_matches_scapy_exactly() -> None:
    """RFC 7915 5.1: version 4, IHL 5, TOS = traffic class, Total Length = payload + 20, TTL =
    hop limit - 1, Protocol, header checksum; addresses from RFC 6052 section 2.3."""
    out = one(translate(v6(udp(), tc=0xB8, fl=0x12345), identification=0x4242))
    assert out == v4(udp(), tos=0xB8, id=0x4242)
    parsed = IP(out)
    assert (parsed.version, parsed.ihl, parsed.len, parsed.frag) == (4, 5, len(out), 0)
    assert_ipv4_header_checksum(out)
    assert l4_checksum_ok(out)


def test_tcp_segment_matches_scapy_exactly() -> None:
    out = one(translate(v6(tcp())))
    assert out == v4(tcp())
    assert l4_checksum_ok(out)


def test_copy_tos_false_writes_zero() -> None:
    """RFC 7915 5.1 TOS: SHOULD be able to ignore the traffic class."""
    out = one(translate(v6(udp(), tc=0xB8), SiitConfig(copy_tos=False)))
    assert IP(out).tos == 0
    assert out == v4(udp())


def test_ttl_is_hop_limit_minus_one() -> None:
    """RFC 7915 5.1 Time to Live: the translator is a router and decrements."""
    for hop_limit in (2, 64, 255):
        assert IP(one(translate(v6(udp(), hlim=hop_limit)))).ttl == hop_limit - 1


def test_decrement_ttl_false_copies_hop_limit() -> None:
    for hop_limit in (1, 255):
        assert IP(one(translate(v6(udp(), hlim=hop_limit), NO_TTL))).ttl == hop_limit


def test_decrement_ttl_false_still_refuses_hop_limit_zero() -> None:
    """Hop limit 0 would be an IPv4 datagram with TTL 0, which nobody may send (RFC 1812
    4.2.2.9); decremented or not it is refused, as RFC 7915 5.1 refuses an expiring one."""
    assert translate(v6(udp(), hlim=0), NO_TTL) == Drop(DropReason.TTL_EXPIRED)


@pytest.mark.parametrize("hop_limit", [0, 1])
def test_hop_limit_expiring_gets_time_exceeded(hop_limit: int) -> None:
    """RFC 7915 5.1 TTL: MUST check for zero and send ICMPv6 Hop Limit Exceeded (3/0)."""
    packet = v6(udp(), hlim=hop_limit)
    result = translate(packet, WITH_ERRORS)
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.TTL_EXPIRED
    reply = IPv6(result.packet)
    assert reply[ICMPv6TimeExceeded].code == 0
    assert (reply.src, reply.dst) == (TRANSLATOR_V6, V6_HOST)
    assert bytes(reply[ICMPv6TimeExceeded].payload) == packet
    assert icmpv6_checksum_ok(result.packet)


def test_hop_limit_expiring_without_error_source_is_dropped() -> None:
    """RFC 7915 5.4: whether errors are sent is configurable (no source address: none sent)."""
    assert translate(v6(udp(), hlim=1)) == Drop(DropReason.TTL_EXPIRED)


def test_identification_comes_from_the_caller_low_16_bits() -> None:
    """RFC 7915 5.1 Identification: from the translator's generator (the caller owns it)."""
    assert IP(one(translate(v6(udp()), identification=0x1234))).id == 0x1234
    assert IP(one(translate(v6(udp()), identification=0xABCDE))).id == 0xBCDE


# Unknown and unsupported transports travel unchanged (RFC 7915 5.1 Protocol, 5.5).
@pytest.mark.parametrize("protocol", [33, 50, 59, 132, 253])  # DCCP, ESP, No Next, SCTP, test
def test_other_transports_are_forwarded_unchanged(protocol: int) -> None:
    """RFC 7915 5.5: MUST forward all transport protocols; DCCP's checksum is OPTIONAL (not
    updated)."""
    data = bytes(range(40))
    out = one(translate(v6(Raw(data), nh=protocol)))
    assert out == v4(Raw(data), proto=protocol)


def test_icmpv6_protocol_becomes_icmp() -> None:
    """RFC 7915 5.1 Protocol: ICMPv6 (58) is changed to ICMPv4 (1)."""
    out = one(translate(v6(ICMPv6EchoRequest(id=1, seq=1))))
    assert IP(out).proto == 1


def test_trailing_bytes_after_payload_length_are_ignored() -> None:
    """Ethernet padding is not part of the datagram (RFC 8200 Payload Length)."""
    assert one(translate(v6(udp()) + bytes(6))) == v4(udp())


# --- 5.1: extension headers ----------------------------------------------------------------------

SKIPPED_HEADERS: dict[str, Callable[[], Packet]] = {
    "hop-by-hop": lambda: IPv6ExtHdrHopByHop(),
    "destination options": lambda: IPv6ExtHdrDestOpt(),
    "routing, segments left 0": lambda: IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=0),
    "all three": lambda: (
        IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting(segleft=0)
        / IPv6ExtHdrDestOpt()
    ),
}


@pytest.mark.parametrize("name", SKIPPED_HEADERS)
def test_extension_headers_are_skipped_not_translated(name: str) -> None:
    """RFC 7915 5.1: Hop-by-Hop, Destination Options and Routing (Segments Left 0) MUST NOT be
    translated into options; Total Length and Protocol skip them."""
    out = one(translate(v6(SKIPPED_HEADERS[name]() / udp())))
    assert out == v4(udp())
    assert IP(out).ihl == 5


def test_routing_header_with_segments_left_gets_parameter_problem() -> None:
    """RFC 7915 5.1: Segments Left != 0 MUST NOT be translated; SHOULD get 4/0 with the pointer
    at the Segments Left octet (40 fixed + 8 Hop-by-Hop + 3)."""
    packet = v6(
        IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=1) / udp()
    )
    result = translate(packet, WITH_ERRORS)
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.IPV6_ROUTING_HEADER
    reply = IPv6(result.packet)
    problem = reply[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (0, 51)
    assert packet[problem.ptr] == 1  # the octet pointed at is Segments Left
    assert (reply.src, reply.dst) == (TRANSLATOR_V6, V6_HOST)
    assert icmpv6_checksum_ok(result.packet)


def test_routing_header_with_segments_left_without_error_source_is_dropped() -> None:
    packet = v6(IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=1) / udp())
    assert translate(packet) == Drop(DropReason.IPV6_ROUTING_HEADER)


def test_routing_header_in_an_icmpv6_error_is_dropped_silently() -> None:
    """RFC 4443 2.4 (e): no ICMPv6 error about an ICMPv6 error."""
    error = ICMPv6DestUnreach(code=4) / Raw(quoted_v6(udp()))
    packet = v6(IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=1) / error)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.IPV6_ROUTING_HEADER)


# --- 5.1: addresses ------------------------------------------------------------------------------


def test_unmappable_destination_is_dropped_silently() -> None:
    """Not addressed to the IPv4 domain (RFC 7915 5.6): no translation and no error."""
    packet = v6(udp(), dst="2001:db8::77")
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.ADDRESS_UNMAPPABLE)


def test_unmappable_source_gets_source_policy_failed() -> None:
    """RFC 7915 5.1 Source Address: a stateless translator SHOULD drop a packet whose source is
    outside its prefixes and answer ICMPv6 1/5 (source address failed ingress/egress policy)."""
    packet = v6(udp(), src="2001:db8::66")
    result = translate(packet, WITH_ERRORS)
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.ADDRESS_UNMAPPABLE
    reply = IPv6(result.packet)
    assert (reply[ICMPv6DestUnreach].type, reply[ICMPv6DestUnreach].code) == (1, 5)
    assert (reply.src, reply.dst) == (TRANSLATOR_V6, "2001:db8::66")
    assert icmpv6_checksum_ok(result.packet)
    assert translate(packet) == Drop(DropReason.ADDRESS_UNMAPPABLE)


@pytest.mark.parametrize("source", ["::1", "::", "ff02::1"])
def test_illegal_source_is_dropped_silently(source: str) -> None:
    """RFC 7915 5.1 Source Address: an illegal source (e.g. ::1) SHOULD be silently dropped."""
    packet = v6(udp(), src=source)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.ADDRESS_UNMAPPABLE)


def test_substrate_mapper_checks_the_network_id() -> None:
    """onm's own mapping (DESIGN.md section 2): the embedded IPv4 of a substrate address that
    carries this network's id; another network's address is unmappable."""
    host = HostPrefix(Location(locale=1, area=1, rack=2, node=1))
    here = embed_ipv4(host, 7, bytes((10, 0, 0, 1)))
    there = embed_ipv4(host, 7, bytes((10, 0, 0, 2)))
    foreign = embed_ipv4(host, 8, bytes((10, 0, 0, 1)))
    mapper = SubstrateMapper(7, {})
    text = {a: str(ipaddress.IPv6Address(a)) for a in (here, there, foreign)}
    out = one(translate_6to4(v6(udp(), src=text[here], dst=text[there]), mapper))
    assert out == v4(udp(), src="10.0.0.1", dst="10.0.0.2")
    wire = v6(udp(), src=text[foreign], dst=text[there])
    assert translate_6to4(wire, mapper) == Drop(DropReason.ADDRESS_UNMAPPABLE)
    wire = v6(udp(), src=text[here], dst=text[foreign])
    assert translate_6to4(wire, mapper) == Drop(DropReason.ADDRESS_UNMAPPABLE)


# --- 5 and 5.1: Don't Fragment, path MTU, fragmentation ------------------------------------------


@pytest.mark.parametrize(("ipv4_total", "df"), [(1259, False), (1260, False), (1261, True)])
def test_df_set_iff_result_exceeds_1260(ipv4_total: int, df: bool) -> None:
    """RFC 7915 section 5 and 5.1 Flags: <= 1260 bytes MUST have DF clear, larger MUST have DF
    set; MF is zero and the offset is zero."""
    data = bytes(ipv4_total - 28)
    out = one(translate(v6(UDP(sport=1, dport=2) / Raw(data))))
    parsed = IP(out)
    assert len(out) == ipv4_total
    assert bool(parsed.flags.DF) is df
    assert not parsed.flags.MF
    assert parsed.frag == 0


def test_too_big_for_ipv4_link_gets_packet_too_big() -> None:
    """RFC 7915 5.1.1 (and 1.4): a DF packet larger than the next-hop MTU MUST be dropped with
    Packet Too Big carrying the MTU the IPv6 sender can use (IPv4 MTU + 20)."""
    packet = v6(UDP(sport=1, dport=2) / Raw(bytes(1400)))
    result = translate(packet, SiitConfig(ipv4_mtu=1400, icmp_source_v6=TRANSLATOR_V6_BYTES))
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.PACKET_TOO_BIG
    reply = IPv6(result.packet)
    assert reply[ICMPv6PacketTooBig].mtu == 1420
    assert reply.dst == V6_HOST
    assert bytes(reply[ICMPv6PacketTooBig].payload) == packet[:1232]  # fits in 1280
    assert icmpv6_checksum_ok(result.packet)


def test_packet_too_big_never_advertises_less_than_1280() -> None:
    """RFC 8200 section 5: 1280 is the minimum IPv6 MTU; smaller IPv4 links fragment (DF clear)."""
    packet = v6(UDP(sport=1, dport=2) / Raw(bytes(1300)))
    result = translate(packet, SiitConfig(ipv4_mtu=1000, icmp_source_v6=TRANSLATOR_V6_BYTES))
    assert isinstance(result, IcmpError)
    assert IPv6(result.packet)[ICMPv6PacketTooBig].mtu == 1280


def test_small_packet_over_small_ipv4_mtu_is_fragmented() -> None:
    """RFC 7915 section 5: DF clear (<= 1260) lets the translator, as a router, fragment."""
    datagram = UDP(sport=1, dport=2) / Raw(bytes(range(256)) * 4)
    result = translate(v6(datagram), SiitConfig(ipv4_mtu=576), identification=0x77)
    assert isinstance(result, Translated)
    assert len(result.packets) == 2
    assert all(len(p) <= 576 for p in result.packets)
    for fragment in result.packets:
        assert_ipv4_header_checksum(fragment)
        assert IP(fragment).id == 0x77
        assert not IP(fragment).flags.DF
    first, data = reassemble(result.packets)
    whole = v4(datagram, id=0x77)
    assert data == whole[20:]
    assert first.proto == 17


def test_fragment_header_fields_are_copied() -> None:
    """RFC 7915 5.1.1: Identification = low 16 bits of the Fragment Header's, MF = M, offset
    copied, DF clear; Total Length leaves out the headers up to the Fragment Header."""
    data = bytes(range(200))
    packet = v6(
        IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(nh=17, id=0x12345678, m=1, offset=100) / Raw(data)
    )
    out = one(translate(packet, identification=0x9999))
    assert out == v4(Raw(data), proto=17, id=0x5678, flags="MF", frag=100)


def test_last_fragment_has_mf_clear() -> None:
    data = bytes(16)
    packet = v6(IPv6ExtHdrFragment(nh=6, id=9, m=0, offset=3) / Raw(data))
    assert one(translate(packet)) == v4(Raw(data), proto=6, id=9, frag=3)


def test_first_fragment_transport_checksum_is_updated() -> None:
    """RFC 7915 5.5 for the first fragment: the checksum covers the whole datagram, so it is
    checked on the reassembly of both translated fragments."""
    datagram = v6(UDP(sport=7, dport=9) / Raw(bytes(range(64))))
    upper = datagram[40:]
    first = v6(IPv6ExtHdrFragment(nh=17, id=0xBEEF, m=1, offset=0) / Raw(upper[:40]))
    second = v6(IPv6ExtHdrFragment(nh=17, id=0xBEEF, m=0, offset=5) / Raw(upper[40:]))
    fragments = (one(translate(first)), one(translate(second)))
    assert fragments[1][20:] == upper[40:]  # non-first fragment: data untouched
    _, data = reassemble(fragments)
    assert data == v4(UDP(sport=7, dport=9) / Raw(bytes(range(64))))[20:]


def test_atomic_fragment_is_translated_with_df_clear() -> None:
    """RFC 7915 5.1.1 applies to a Fragment Header with M = 0 and offset 0 (RFC 8021)."""
    packet = v6(IPv6ExtHdrFragment(id=0x10002, m=0, offset=0) / udp())
    assert one(translate(packet)) == v4(udp(), id=2)


def test_atomic_fragment_icmpv6_is_translated() -> None:
    packet = v6(IPv6ExtHdrFragment(id=3, m=0, offset=0) / ICMPv6EchoRequest(id=1, seq=2))
    out = one(translate(packet))
    assert out == v4(ICMP(type=8, id=1, seq=2), id=3)


def test_large_fragment_is_fragmented_further() -> None:
    """RFC 7915 5.1.1: DF clear lets the translator fragment a fragment for a small IPv4 MTU."""
    data = bytes(range(256)) * 5 + bytes(120)  # 1400 octets, a multiple of 8
    packet = v6(IPv6ExtHdrFragment(nh=17, id=0xABCD1234, m=1, offset=10) / Raw(data))
    result = translate(packet, SiitConfig(ipv4_mtu=576))
    assert isinstance(result, Translated)
    parsed = [IP(p) for p in result.packets]
    assert [p.frag for p in parsed] == [10, 79, 148]  # in order (RFC 7915 section 5)
    assert all(p.flags.MF and not p.flags.DF and p.id == 0x1234 for p in parsed)
    assert all(len(p) <= 576 for p in result.packets)
    assert b"".join(p[20:] for p in result.packets) == data


def test_refragmented_last_fragment_ends_with_mf_clear() -> None:
    data = bytes(range(200)) * 4
    packet = v6(IPv6ExtHdrFragment(nh=17, id=5, m=0, offset=2) / Raw(data))
    result = translate(packet, SiitConfig(ipv4_mtu=300))
    assert isinstance(result, Translated)
    head = v6(IPv6ExtHdrFragment(nh=17, id=5, m=1, offset=0) / Raw(bytes(16)))
    _, whole = reassemble((one(translate(head)), *result.packets))
    assert whole == bytes(16) + data


def test_fragment_past_the_largest_datagram_is_dropped() -> None:
    """RFC 8200 4.5: a fragment beyond 65535 octets is invalid; IPv4 cannot carry it either
    (its 13-bit offset would wrap when refragmented)."""
    packet = v6(IPv6ExtHdrFragment(nh=17, id=5, m=0, offset=8100) / Raw(bytes(1000)))
    assert translate(packet, SiitConfig(ipv4_mtu=576)) == Drop(DropReason.IPV6_BAD_FRAGMENT)
    fits = v6(IPv6ExtHdrFragment(nh=17, id=5, m=0, offset=8000) / Raw(bytes(1000)))
    assert isinstance(translate(fits, SiitConfig(ipv4_mtu=576)), Translated)


EXTENSIONS_AFTER_FRAGMENT: dict[str, Callable[[], Packet]] = {
    "hop-by-hop": lambda: IPv6ExtHdrHopByHop(),
    "destination options": lambda: IPv6ExtHdrDestOpt(),
    "routing": lambda: IPv6ExtHdrRouting(segleft=0),
    "authentication header": lambda: AH(nh=17, payloadlen=4, spi=1, icv=bytes(12)),
}


@pytest.mark.parametrize("name", EXTENSIONS_AFTER_FRAGMENT)
def test_extension_header_after_fragment_header_gets_admin_prohibited(name: str) -> None:
    """RFC 7915 5.1.1 Total Length: an extension header (AH included, ESP excepted) after the
    Fragment Header SHOULD be dropped and logged (the drop reason is the log). Not "silently":
    5.4's default error, Destination Unreachable 1/1, goes back to the sender, quoting it."""
    packet = v6(IPv6ExtHdrFragment(id=1, m=1, offset=0) / EXTENSIONS_AFTER_FRAGMENT[name]() / udp())
    result = translate(packet, WITH_ERRORS)
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.IPV6_BAD_EXTENSION_HEADER
    reply = IPv6(result.packet)
    assert (reply.src, reply.dst, reply.nh) == (TRANSLATOR_V6, V6_HOST, 58)
    assert (reply[ICMPv6DestUnreach].type, reply[ICMPv6DestUnreach].code) == (1, 1)
    assert bytes(reply[ICMPv6DestUnreach].payload) == packet
    assert icmpv6_checksum_ok(result.packet)


@pytest.mark.parametrize("name", EXTENSIONS_AFTER_FRAGMENT)
def test_extension_header_after_fragment_header_is_dropped(name: str) -> None:
    """Without an error source (RFC 7915 5.4: errors are configurable) the drop is counted."""
    packet = v6(IPv6ExtHdrFragment(id=1, m=1, offset=0) / EXTENSIONS_AFTER_FRAGMENT[name]() / udp())
    assert translate(packet) == Drop(DropReason.IPV6_BAD_EXTENSION_HEADER)


def test_extension_header_after_non_first_fragment_is_dropped() -> None:
    """No error about a non-first fragment (RFC 4443 2.4 (e) spirit, RFC 1812 4.3.2.7)."""
    packet = v6(IPv6ExtHdrFragment(nh=60, id=1, m=0, offset=1) / Raw(bytes(16)))
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.IPV6_BAD_EXTENSION_HEADER)


def test_esp_after_fragment_header_is_translated() -> None:
    packet = v6(IPv6ExtHdrFragment(nh=50, id=1, m=1, offset=0) / Raw(bytes(16)))
    assert IP(one(translate(packet))).proto == 50


# --- 5.5: transport checksums --------------------------------------------------------------------


@pytest.mark.parametrize("make", [udp, tcp], ids=["udp", "tcp"])
def test_transport_checksum_recomputed_by_scapy_matches(make: Callable[[], Packet]) -> None:
    """RFC 7915 5.5: TCP and UDP checksums MUST be updated for the new pseudo-header."""
    out = one(translate(v6(make())))
    packet = IP(out)
    layer = packet[TCP] if packet.proto == 6 else packet[UDP]
    written = layer.chksum
    del layer.chksum
    rebuilt = IP(bytes(packet))
    assert (rebuilt[TCP] if rebuilt.proto == 6 else rebuilt[UDP]).chksum == written


@pytest.mark.parametrize("make", [udp, tcp], ids=["udp", "tcp"])
def test_wrong_transport_checksum_stays_wrong_by_the_same_amount(
    make: Callable[[], Packet],
) -> None:
    """The update is incremental (RFC 1624): a corrupt segment is not laundered; what scapy's
    verification sums to (zero when valid) is the same on both sides of the translator."""
    good = v6(make())
    at = 40 + (16 if IPv6(good).nh == 6 else 6)
    (value,) = struct.unpack_from("!H", good, at)
    bad = good[:at] + struct.pack("!H", value ^ 0x0101) + good[at + 2 :]
    out = one(translate(bad))
    assert not l4_checksum_ok(out)
    residual_v6 = in6_chksum(IPv6(bad).nh, IPv6(bad), bad[40:])
    residual_v4 = in4_chksum(IP(out).proto, IP(out), out[20:])
    assert residual_v6 == residual_v4 != 0


def test_udp_checksum_result_zero_is_sent_as_ones() -> None:
    """RFC 768: a computed UDP checksum of zero is transmitted as 0xFFFF."""
    # With a payload word w the checksum is ~(s + w), s the sum without it; scapy gives ~s with
    # w = 0, and w = ~s makes the sum all ones, so the computed checksum is zero.
    wire = bytes(IP(src=V6_HOST_AS_V4, dst=V4_HOST) / UDP(sport=1, dport=2, chksum=0) / bytes(4))
    word = in4_chksum(17, IP(wire), wire[20:])
    payload = struct.pack("!H", word) + bytes(2)
    assert in4_chksum(17, IP(wire), wire[20:28] + payload) == 0
    datagram = UDP(sport=1, dport=2) / Raw(payload)
    out = one(translate(v6(datagram)))
    assert struct.unpack_from("!H", out, 26)[0] == 0xFFFF
    assert l4_checksum_ok(out)


def test_udp_zero_checksum_is_carried_as_zero() -> None:
    """An IPv6 UDP checksum of zero (RFC 6935 tunnels) means "none" in IPv4 too (RFC 768)."""
    packet = v6(UDP(sport=1, dport=2, chksum=0) / Raw(b"x"))
    assert struct.unpack_from("!H", one(translate(packet)), 26)[0] == 0


@pytest.mark.parametrize(
    ("make", "protocol", "size"), [(udp, 17, 7), (tcp, 6, 17)], ids=["udp", "tcp"]
)
def test_transport_header_too_short_for_its_checksum_is_dropped(
    make: Callable[[], Packet], protocol: int, size: int
) -> None:
    packet = v6(Raw(bytes(make())[:size]), nh=protocol)
    assert translate(packet) == Drop(DropReason.L4_TRUNCATED)


# --- 5.2: ICMPv6 informational messages ----------------------------------------------------------


@pytest.mark.parametrize(("layer", "v4_type"), [(ICMPv6EchoRequest, 8), (ICMPv6EchoReply, 0)])
def test_echo_is_retyped_and_checksum_excludes_pseudo_header(
    layer: type[Packet], v4_type: int
) -> None:
    """RFC 7915 5.2: Echo Request/Reply (128/129) -> 8/0, checksum adjusted for the type and
    without the ICMPv6 pseudo-header; identifier, sequence and data unchanged."""
    out = one(translate(v6(layer(id=0x1234, seq=0x5678, data=b"ping payload"))))
    assert out == v4(ICMP(type=v4_type, id=0x1234, seq=0x5678) / Raw(b"ping payload"))
    assert scapy_checksum(out[20:]) == 0


# RFC 7915 5.2: single-hop (MLD 130-132, ND 133-137) and unknown informational: silently drop.
@pytest.mark.parametrize("icmp_type", [130, 131, 132, 133, 134, 135, 136, 137, 138, 200, 255])
def test_other_informational_messages_are_dropped(icmp_type: int) -> None:
    packet = icmp6(icmp_type, 0, bytes(4), bytes(16))
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.ICMP_UNTRANSLATABLE)


def test_bad_icmpv6_checksum_is_dropped() -> None:
    """RFC 7915 section 5: the checksum MUST be evaluated before translation."""
    packet = bytearray(v6(ICMPv6EchoRequest(id=1, seq=1)))
    packet[42] ^= 0xFF
    assert translate(bytes(packet)) == Drop(DropReason.ICMP_BAD_CHECKSUM)


def test_fragmented_icmpv6_is_dropped() -> None:
    """RFC 7915 1.2: fragmented ICMP/ICMPv6 packets will not be translated."""
    message = bytes(ICMPv6EchoRequest(id=1, seq=1, data=bytes(32)))
    first = v6(IPv6ExtHdrFragment(nh=58, id=1, m=1, offset=0) / Raw(message[:24]))
    rest = v6(IPv6ExtHdrFragment(nh=58, id=1, m=0, offset=3) / Raw(message[24:]))
    assert translate(first) == Drop(DropReason.ICMP_FRAGMENTED)
    assert translate(rest) == Drop(DropReason.ICMP_FRAGMENTED)


def test_truncated_icmpv6_header_is_dropped() -> None:
    assert translate(v6(Raw(bytes(4)), nh=58)) == Drop(DropReason.ICMP_TRUNCATED)


# --- 5.2: ICMPv6 error messages ------------------------------------------------------------------

# RFC 7915 section 5.2, "ICMPv6 error messages", written out by hand from the RFC so that the
# table in icmp_map is checked against it: (ICMPv6 type, code) -> (ICMPv4 type, code).
RFC7915_ERRORS_6TO4: dict[tuple[int, int], tuple[int, int]] = {
    (1, 0): (3, 1),  # no route to destination -> host unreachable
    (1, 1): (3, 10),  # administratively prohibited -> host administratively prohibited
    (1, 2): (3, 1),  # beyond scope of source address -> host unreachable
    (1, 3): (3, 1),  # address unreachable -> host unreachable
    (1, 4): (3, 3),  # port unreachable -> port unreachable
    (2, 0): (3, 4),  # packet too big -> fragmentation needed
    (3, 0): (11, 0),  # hop limit exceeded -> TTL exceeded
    (3, 1): (11, 1),  # fragment reassembly time exceeded -> same
    (4, 0): (12, 0),  # erroneous header field -> parameter problem, pointer
    (4, 1): (3, 2),  # unrecognized next header -> protocol unreachable
}
# Silently dropped: other Destination Unreachable codes, Parameter Problem code 2 (unrecognized
# option) and beyond, and unknown error types.
RFC7915_DROPPED_ERRORS = [(1, 5), (1, 6), (1, 7), (1, 8), (4, 2), (4, 3), (0, 0), (5, 0), (127, 0)]


def test_error_table_is_the_rfcs() -> None:
    table = {key: (m.type, m.code) for key, m in icmp_map.ERRORS_6TO4.items()}
    assert table == RFC7915_ERRORS_6TO4


def _error_rest(icmp_type: int) -> bytes:
    """A meaningful rest-of-header for each ICMPv6 error type."""
    if icmp_type == 2:
        return struct.pack("!I", 1400)
    if icmp_type == 4:
        return struct.pack("!I", 6)  # Next Header
    return bytes(4)


def _expected_rest(v4_type: int, v4_code: int) -> bytes:
    if (v4_type, v4_code) == (3, 4):
        return struct.pack("!HH", 0, 1380)
    if v4_type == 12:
        return bytes((9, 0, 0, 0))  # Protocol
    return bytes(4)


@pytest.mark.parametrize(("v6_type", "v6_code"), sorted(icmp_map.ERRORS_6TO4))
def test_every_error_translates_as_the_rfc_says(v6_type: int, v6_code: int) -> None:
    """RFC 7915 5.2/5.3: type and code per the RFC; the quoted packet is translated; the
    ICMPv4 checksum is valid."""
    v4_type, v4_code = RFC7915_ERRORS_6TO4[(v6_type, v6_code)]
    inner = quoted_v6(udp())
    packet = icmp6(v6_type, v6_code, _error_rest(v6_type), inner)
    out = one(translate(packet))
    message = icmp4(v4_type, v4_code, _expected_rest(v4_type, v4_code), quoted_v4(udp()))
    assert out == v4(Raw(message), proto=1)
    assert scapy_checksum(out[20:]) == 0
    assert_ipv4_header_checksum(out)


@pytest.mark.parametrize(("v6_type", "v6_code"), RFC7915_DROPPED_ERRORS)
def test_untranslatable_errors_are_dropped(v6_type: int, v6_code: int) -> None:
    packet = icmp6(v6_type, v6_code, bytes(4), quoted_v6(udp()))
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.ICMP_UNTRANSLATABLE)


# RFC 7915 5.2 Packet Too Big: minimum(advertised - 20, IPv4 next hop, IPv6 next hop - 20), and
# 8 less again when the quoted packet carries a Fragment Header the IPv4 sender never sent.
@pytest.mark.parametrize(
    ("advertised", "ipv4_mtu", "ipv6_mtu", "fragment_header", "expected"),
    [
        (1500, 1500, 1500, False, 1480),
        (1280, 1500, 1500, False, 1260),
        (1500, 1400, 1500, False, 1400),
        (2000, 9000, 1500, False, 1480),
        (9000, 9000, 9000, False, 8980),
        (1500, 1500, 1500, True, 1472),
        (1280, 1500, 1500, True, 1252),
    ],
)
def test_packet_too_big_mtu(
    advertised: int, ipv4_mtu: int, ipv6_mtu: int, fragment_header: bool, expected: int
) -> None:
    upper: Packet = udp()
    if fragment_header:
        upper = IPv6ExtHdrFragment(id=0x10007, m=0, offset=0) / upper
    packet = icmp6(2, 0, struct.pack("!I", advertised), quoted_v6(upper))
    out = one(translate(packet, SiitConfig(ipv4_mtu=ipv4_mtu, ipv6_mtu=ipv6_mtu)))
    assert out[20:22] == bytes((3, 4))
    assert out[24:28] == struct.pack("!HH", 0, expected)  # RFC 1191 section 4
    inner = quoted_v4(udp(), id=7) if fragment_header else quoted_v4(udp())
    assert out[28:] == inner
    assert scapy_checksum(out[20:]) == 0


# RFC 7915 5.2 Figure 6: IPv6 header octet -> IPv4 header octet; absent: silently drop.
FIGURE_6: dict[int, int] = {
    0: 0,
    1: 1,
    4: 2,
    5: 2,
    6: 9,
    7: 8,
    **dict.fromkeys(range(8, 24), 12),
    **dict.fromkeys(range(24, 40), 16),
}


@pytest.mark.parametrize("pointer", [*range(41), 48, 255, 0x10000])
def test_parameter_problem_pointer_follows_figure_6(pointer: int) -> None:
    packet = icmp6(4, 0, struct.pack("!I", pointer), quoted_v6(udp()))
    result = translate(packet)
    if pointer not in FIGURE_6:
        assert result == Drop(DropReason.ICMP_UNTRANSLATABLE)
        return
    message = IP(one(result))[ICMP]
    assert (message.type, message.code, message.ptr) == (12, 0, FIGURE_6[pointer])


def test_pointer_table_is_figure_6() -> None:
    assert icmp_map.POINTER_6TO4 == FIGURE_6


# --- 5.3: the packet inside an ICMPv6 error ------------------------------------------------------


class TwoPrefixMapper:
    """Classic SIIT: IPv6 hosts under one prefix, IPv4 hosts under another (RFC 6052 2.4).

    The source and destination mappings differ, so a quoted packet whose addresses were not
    swapped would not map at all.
    """

    hosts_v6 = Rfc6052Mapper("2001:db8:122:344::/96")
    hosts_v4 = Rfc6052Mapper("64:ff9b::/96")

    def source_4to6(self, address: bytes) -> bytes | None:
        return self.hosts_v4.embed(address)

    def destination_4to6(self, address: bytes) -> bytes | None:
        return self.hosts_v6.embed(address)

    def source_6to4(self, address: bytes) -> bytes | None:
        return self.hosts_v6.extract(address)

    def destination_6to4(self, address: bytes) -> bytes | None:
        return self.hosts_v4.extract(address)


def test_inner_addresses_are_mapped_the_other_way_round() -> None:
    """RFC 7915 5.3: the quoted packet travelled toward the IPv6 host, so its source is an
    IPv4 host (mapped as a destination) and its destination the IPv6 host."""
    v6_host = "2001:db8:122:344::198.51.100.7"
    inner = v6(udp(), src=V4_HOST_AS_V6, dst=v6_host)
    packet = icmp6(1, 4, bytes(4), inner, src=v6_host, dst=V4_HOST_AS_V6)
    out = one(translate_6to4(packet, TwoPrefixMapper()))
    assert out == v4(Raw(icmp4(3, 3, bytes(4), quoted_v4(udp()))), proto=1)


def test_inner_unmappable_address_drops_the_error() -> None:
    inner = v6(udp(), src=V4_HOST_AS_V6, dst="2001:db8::99")
    packet = icmp6(1, 4, bytes(4), inner)
    assert translate(packet) == Drop(DropReason.ADDRESS_UNMAPPABLE)


def test_inner_hop_limit_is_not_decremented() -> None:
    """RFC 7915 5.3: "except that the TTL/Hop Limit value of the inner ... are not decremented"."""
    packet = icmp6(3, 0, bytes(4), quoted_v6(udp(), hlim=1))
    out = one(translate(packet))
    assert IP(out).ttl == 63
    assert IP(out)[ICMP].payload.ttl == 1


def test_inner_traffic_class_is_copied() -> None:
    packet = icmp6(1, 4, bytes(4), quoted_v6(udp(), tc=0x28))
    assert IP(one(translate(packet)))[ICMP].payload.tos == 0x28


def test_inner_extension_headers_are_removed() -> None:
    """RFC 7915 5.3: translated like a normal packet, so Hop-by-Hop, Destination Options and
    Routing headers go."""
    upper = (
        IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=0)
        / IPv6ExtHdrDestOpt()
        / udp()
    )
    packet = icmp6(1, 4, bytes(4), quoted_v6(upper))
    out = one(translate(packet))
    assert out == v4(Raw(icmp4(3, 3, bytes(4), quoted_v4(udp()))), proto=1)


def test_inner_routing_header_with_segments_left_is_not_refused() -> None:
    """A quoted packet is not routed: its Segments Left does not stop the translation."""
    upper = IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=1) / udp()
    packet = icmp6(1, 4, bytes(4), quoted_v6(upper))
    inner = IP(one(translate(packet, WITH_ERRORS)))[ICMP].payload
    assert (inner.proto, inner.len) == (17, 20 + len(udp()))


def test_inner_tcp_checksum_is_updated() -> None:
    packet = icmp6(1, 4, bytes(4), quoted_v6(tcp()))
    out = one(translate(packet))
    inner = out[28:]
    assert inner == quoted_v4(tcp())
    assert l4_checksum_ok(inner)


def test_inner_echo_is_retyped_without_pseudo_header() -> None:
    """An echo request that timed out: the quoted ICMPv6 echo becomes ICMPv4 echo (5.2/5.3)."""
    echo = ICMPv6EchoRequest(id=7, seq=8, data=b"traceroute")
    packet = icmp6(3, 0, bytes(4), quoted_v6(echo, hlim=1))
    inner = one(translate(packet))[28:]
    assert inner == quoted_v4(ICMP(type=8, id=7, seq=8) / Raw(b"traceroute"), ttl=1)
    assert scapy_checksum(inner[20:]) == 0


def test_inner_fragment_keeps_its_fragment_fields() -> None:
    """RFC 7915 5.1.1 applied to the quoted packet: id, MF and offset copied, DF clear."""
    data = bytes(range(48))
    upper = IPv6ExtHdrFragment(nh=17, id=0x00010203, m=1, offset=20) / Raw(data)
    packet = icmp6(3, 1, bytes(4), quoted_v6(upper))
    inner = one(translate(packet))[28:]
    assert inner == quoted_v4(Raw(data), proto=17, id=0x0203, flags="MF", frag=20)


@pytest.mark.parametrize(("size", "df"), [(1260, False), (1261, True)])
def test_inner_df_follows_the_1260_rule(size: int, df: bool) -> None:
    """RFC 7915 5.3: translated "just like a normal IP packet", so DF follows 5.1's rule on the
    length the quoted packet declares (the quote itself is cut to fit 1280 octets)."""
    datagram = UDP(sport=1, dport=2) / Raw(bytes(size - 28))
    quoted = quoted_v6(datagram)[:1232]
    packet = icmp6(2, 0, struct.pack("!I", 1280), quoted)
    inner = IP(one(translate(packet)))[ICMP].payload
    assert inner.len == size
    assert bool(inner.flags.DF) is df


def test_truncated_inner_udp_keeps_declared_length_and_full_checksum() -> None:
    """RFC 4443 2.4 (c) quotes may be cut; the checksum of the whole datagram is still moved."""
    datagram = UDP(sport=1, dport=2) / Raw(bytes(range(256)) * 2)
    packet = icmp6(1, 4, bytes(4), quoted_v6(datagram)[:60])
    out = one(translate(packet))
    whole = quoted_v4(datagram)
    assert out[28:] == whole[:40]
    assert IP(out).len == len(out)  # the outer Total Length is updated (5.3)


@pytest.mark.parametrize("cut", [40, 48, 56, 70])
def test_truncated_inner_tcp_is_translated(cut: int) -> None:
    datagram = TCP(sport=1, dport=2) / Raw(bytes(100))
    packet = icmp6(1, 4, bytes(4), quoted_v6(datagram)[:cut])
    inner = one(translate(packet))[28:]
    whole = quoted_v4(datagram)
    if cut - 40 >= 18:  # the checksum field is there: it is moved
        assert inner == whole[: cut - 20]
    else:  # it is not: the octets that are there travel unchanged (addresses aside)
        assert inner[:20] == whole[:20]
        assert inner[20:] == quoted_v6(datagram)[40:cut]


def test_truncated_inner_ipv6_header_drops_the_error() -> None:
    packet = icmp6(1, 4, bytes(4), quoted_v6(udp())[:30])
    assert translate(packet) == Drop(DropReason.IPV6_TRUNCATED)


def test_inner_payload_length_beyond_ipv4_is_dropped() -> None:
    """A quoted Payload Length of 65535 needs an IPv4 Total Length IPv4 cannot express."""
    quoted = bytearray(quoted_v6(udp()))
    quoted[4:6] = b"\xff\xff"
    packet = icmp6(1, 4, bytes(4), bytes(quoted))
    assert translate(packet) == Drop(DropReason.IPV6_BAD_PAYLOAD_LENGTH)


def test_nested_error_is_dropped() -> None:
    """RFC 7915 5.3: the process MUST stop at the first embedded header and drop the packet if
    it contains more."""
    nested = quoted_v6(ICMPv6DestUnreach(code=4) / Raw(v6(udp())))
    packet = icmp6(1, 4, bytes(4), nested)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.ICMP_ERROR_NESTED)


def test_inner_untranslatable_icmpv6_drops_the_error() -> None:
    packet = icmp6(1, 4, bytes(4), quoted_v6(Raw(bytes((135, 0, 0, 0)) + bytes(20)), nh=58))
    assert translate(packet) == Drop(DropReason.ICMP_UNTRANSLATABLE)


def test_outer_total_length_is_updated() -> None:
    """RFC 7915 5.3: the quoted packet shrinks by 20 (and its extension headers); the outer
    Total Length MUST follow."""
    upper = IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / udp()
    packet = icmp6(1, 4, bytes(4), quoted_v6(upper))
    out = one(translate(packet))
    assert IP(out).len == len(out) == len(packet) - 20 - 20 - 16


# --- 5.2: RFC 4884 extensions --------------------------------------------------------------------

# An RFC 4884 extension structure: header (version 2, checksum left as is: opaque to the
# translator) and one object (RFC 4950 MPLS label stack, class 1 type 1).
EXTENSION = bytes.fromhex("20000000") + bytes.fromhex("00080101") + bytes.fromhex("0000a1ff")


@pytest.mark.parametrize(("quote_v6", "original_v4"), [(128, 128), (256, 236)])
def test_rfc4884_length_is_rescaled(quote_v6: int, original_v4: int) -> None:
    """RFC 7915 5.2 ICMP Error Payload: the length attribute MUST be adjusted; ICMPv6 counts
    64-bit words, ICMPv4 32-bit words (RFC 4884 sections 4.5, 5); the original datagram field
    is at least 128 octets (RFC 4884 section 4.1); extensions travel as opaque octets."""
    datagram = UDP(sport=1, dport=2) / Raw(bytes(range(200)) * 2)
    quoted = quoted_v6(datagram)[:quote_v6]
    packet = icmp6(3, 0, bytes((quote_v6 // 8, 0, 0, 0)), quoted + EXTENSION)
    out = one(translate(packet))
    message = out[20:]
    assert scapy_checksum(message) == 0
    assert message[5] == original_v4 // 4
    body = message[8:]
    inner = quoted_v4(datagram)[: quote_v6 - 20]
    assert body == inner + bytes(original_v4 - len(inner)) + EXTENSION


def test_rfc4884_quote_gives_way_to_the_extension_within_576() -> None:
    """RFC 1812 4.3.2.3 and RFC 4884 section 4: the ICMPv4 error fits in 576 octets; the quote
    is cut to a whole 32-bit word so that the extension still fits after it (a 1600-octet quote
    and a 12-octet extension: 576 - 20 - 8 - 12 = 536 octets, 134 words)."""
    datagram = UDP(sport=1, dport=2) / Raw(bytes(1600))
    quoted = quoted_v6(datagram)[:1200]
    packet = icmp6(1, 4, bytes((150, 0, 0, 0)), quoted + EXTENSION)
    out = one(translate(packet))
    assert len(out) == IP(out).len == 576
    message = out[20:]
    assert message[5] == 134
    assert message[8:] == quoted_v4(datagram, flags="DF")[:536] + EXTENSION
    assert scapy_checksum(message) == 0


# Shapes of an independent translator's RFC 7915 vectors (Jool graybox "ic"): quote and
# extension lengths in, what the ICMPv4 error holds out. Extensions are opaque zero-checksum
# structures of the given length (RFC 4884 section 7 header, then filler).
@pytest.mark.parametrize(
    ("payload", "words_v6", "extension", "words_v4", "quote_v4", "size"),
    [
        (480, 66, 40, 127, 508, 576),  # quote just fits beside the extension
        (488, 67, 40, 127, 508, 576),  # quote cut by 8 octets
        (1144, 149, 40, 127, 508, 576),  # quote cut hard (a 1280-octet ICMPv6 error)
        (80, 16, 420, 32, 108, 576),  # 108 octets and 20 of padding, then 420: 576
        (80, 16, 421, 0, 108, 136),  # 421 leaves no room for 128: extension left out, no pad
        (528, 72, 521, 0, 548, 576),  # both too big: extension left out, quote cut to 548
    ],
    ids=["fits", "quote-cut-8", "quote-cut-hard", "exact", "ext-left-out", "both-too-big"],
)
def test_rfc4884_extension_within_576(
    payload: int, words_v6: int, extension: int, words_v4: int, quote_v4: int, size: int
) -> None:
    """RFC 1812 4.3.2.3 (576 octets), RFC 4884 section 4 (at least 128 octets, 32-bit words):
    the quote gives way first; an extension that does not fit beside 128 octets is left out
    whole and the length attribute is zero."""
    datagram = UDP(sport=1, dport=2) / Raw((bytes(range(256)) * 5)[:payload])
    original = quoted_v6(datagram)
    field = original[: words_v6 * 8].ljust(words_v6 * 8, b"\0")
    structure = (bytes.fromhex("20000000") + bytes(extension))[:extension]
    packet = icmp6(1, 4, bytes((words_v6, 0, 0, 0)), field + structure)
    out = one(translate(packet))
    assert len(out) == IP(out).len == size
    message = out[20:]
    assert scapy_checksum(message) == 0
    assert message[5] == words_v4
    assert message[8 : 8 + quote_v4] == quoted_v4(datagram)[:quote_v4]
    if words_v4:
        assert message[8 + quote_v4 : 8 + words_v4 * 4] == bytes(words_v4 * 4 - quote_v4)
        assert message[8 + words_v4 * 4 :] == structure
    else:
        assert len(message) == 8 + quote_v4


@pytest.mark.parametrize(("size", "expected"), [(400, 360), (576, 536), (700, 576), (1280, 576)])
def test_translated_icmpv4_error_fits_in_576(size: int, expected: int) -> None:
    """The translator is a router (RFC 7915 1.4) and the ICMPv4 error it forwards keeps to 576
    octets (RFC 1812 4.3.2.3): a 700-octet ICMPv6 error becomes 576, not 660; one of 1280 too.
    The quote keeps the Total Length it declared (RFC 7915 5.3)."""
    datagram = UDP(sport=1, dport=2) / Raw(b"t" * (size - 96))
    packet = icmp6(3, 0, bytes(4), quoted_v6(datagram))
    assert len(packet) == size
    out = one(translate(packet))
    assert len(out) == IP(out).len == expected
    assert_ipv4_header_checksum(out)
    assert scapy_checksum(out[20:]) == 0
    assert out[28:] == quoted_v4(datagram)[: expected - 28]
    assert IP(out[28:]).len == size - 48 - 20


def test_no_length_attribute_means_no_extension() -> None:
    quoted = quoted_v6(udp())
    out = one(translate(icmp6(1, 4, bytes(4), quoted + bytes(8))))
    assert out[24:28] == bytes(4)


# --- RFC 6791: errors from addresses the mapper does not know ------------------------------------


def test_error_from_unmappable_router_uses_the_6791_pool() -> None:
    """RFC 7915 5.2 and RFC 6791: an ICMPv6 error from a native IPv6 router gets a source from
    the configured IPv4 pool."""
    packet = icmp6(3, 0, bytes(4), quoted_v6(udp()), src=ROUTER_V6)
    out = one(translate(packet, SiitConfig(icmp_error_pool_v4=POOL_6791)))
    assert out == v4(Raw(icmp4(11, 0, bytes(4), quoted_v4(udp()))), src="203.0.113.1", proto=1)


def test_error_from_unmappable_router_without_pool_is_dropped() -> None:
    packet = icmp6(3, 0, bytes(4), quoted_v6(udp()), src=ROUTER_V6)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.ADDRESS_UNMAPPABLE)


def test_pool_is_only_for_errors() -> None:
    packet = v6(ICMPv6EchoRequest(id=1, seq=1), src=ROUTER_V6)
    config = SiitConfig(icmp_error_pool_v4=POOL_6791)
    assert translate(packet, config) == Drop(DropReason.ADDRESS_UNMAPPABLE)


# --- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", DropReason.IPV6_TRUNCATED),
        (v6(udp())[:39], DropReason.IPV6_TRUNCATED),
        (bytes((0x40,)) + v6(udp())[1:], DropReason.IPV6_BAD_VERSION),
        (v6(udp())[:-1], DropReason.IPV6_TRUNCATED),
        (v6(Raw(bytes((17, 2))), nh=0), DropReason.IPV6_TRUNCATED),
        (v6(IPv6ExtHdrHopByHop(len=10) / udp()), DropReason.IPV6_TRUNCATED),
        (
            v6(IPv6ExtHdrFragment(id=1, m=1) / IPv6ExtHdrFragment(id=1, m=1) / udp()),
            DropReason.IPV6_BAD_EXTENSION_HEADER,
        ),
        (v6(Raw(bytes(3)), nh=44), DropReason.IPV6_TRUNCATED),
    ],
    ids=[
        "empty",
        "short header",
        "version 4",
        "payload length beyond data",
        "truncated hop-by-hop",
        "hop-by-hop longer than payload",
        "two fragment headers",
        "truncated fragment header",
    ],
)
def test_malformed_ipv6_is_dropped_with_its_reason(packet: bytes, reason: DropReason) -> None:
    assert translate(packet, WITH_ERRORS) == Drop(reason)


# --- 5.4: ICMPv6 errors the translator sends itself ----------------------------------------------


def test_own_error_quotes_as_much_as_fits_in_1280() -> None:
    """RFC 4443 2.4 (c): the error is no larger than the minimum IPv6 MTU."""
    packet = v6(UDP(sport=1, dport=2) / Raw(bytes(1400)), hlim=1)
    result = translate(packet, WITH_ERRORS)
    assert isinstance(result, IcmpError)
    assert len(result.packet) == 1280
    reply = IPv6(result.packet)
    assert (reply.src, reply.dst, reply.nh, reply.plen) == (TRANSLATOR_V6, V6_HOST, 58, 1240)
    assert result.packet[48:] == packet[:1232]
    assert icmpv6_checksum_ok(result.packet)


def test_own_error_about_an_icmpv6_error_is_never_sent() -> None:
    packet = icmp6(1, 4, bytes(4), quoted_v6(udp()), hlim=1)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.TTL_EXPIRED)


def test_own_error_about_an_echo_is_sent() -> None:
    """Traceroute with echo requests needs Time Exceeded (RFC 4443 2.4 (e) only forbids errors
    about errors)."""
    result = translate(v6(ICMPv6EchoRequest(id=1, seq=1), hlim=1), WITH_ERRORS)
    assert isinstance(result, IcmpError)


def test_own_error_about_a_non_first_fragment_is_never_sent() -> None:
    packet = v6(IPv6ExtHdrFragment(nh=17, id=1, m=0, offset=8) / Raw(bytes(8)), hlim=1)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.TTL_EXPIRED)
    first = v6(IPv6ExtHdrFragment(nh=17, id=1, m=1, offset=0) / Raw(bytes(8)), hlim=1)
    assert isinstance(translate(first, WITH_ERRORS), IcmpError)


@pytest.mark.parametrize(
    ("src", "dst"), [(V6_HOST, "ff0e::1"), ("::", V4_HOST_AS_V6), ("ff02::1", V4_HOST_AS_V6)]
)
def test_own_error_about_group_or_unspecified_addresses_is_never_sent(src: str, dst: str) -> None:
    packet = v6(udp(), src=src, dst=dst, hlim=1)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.TTL_EXPIRED)


def test_own_error_to_loopback_is_never_sent() -> None:
    packet = v6(udp(), src="::1", hlim=1)
    assert translate(packet, WITH_ERRORS) == Drop(DropReason.TTL_EXPIRED)


@pytest.mark.parametrize(
    ("address", "unicast"),
    [("2001:db8::1", True), ("fe80::1", True), ("::", False), ("::1", False), ("ff02::1", False)],
)
def test_is_unicast_v6(address: str, unicast: bool) -> None:
    assert is_unicast_v6(ipaddress.IPv6Address(address).packed) is unicast


def test_icmpv6_error_built_directly() -> None:
    original = v6(udp())
    message = (1, 1, bytes(4))
    reason = DropReason.PROTOCOL_UNTRANSLATABLE
    src, dst = original[8:24], original[24:40]
    result = icmpv6_error(original, src, dst, False, False, message, WITH_ERRORS, reason)
    assert isinstance(result, IcmpError)
    reply = IPv6(result.packet)
    assert (reply.hlim, reply[ICMPv6DestUnreach].code) == (64, 1)
    assert bytes(reply[ICMPv6DestUnreach].payload) == original


# --- properties ----------------------------------------------------------------------------------

unicast_v4 = st.tuples(
    st.integers(1, 223).filter(lambda first: first != 127),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(1, 254),
).map(lambda t: ".".join(map(str, t)))


def _upper(kind: str, data: bytes, port: int) -> Packet:
    if kind == "tcp":
        return TCP(sport=port, dport=80, seq=port, flags="A") / Raw(data)
    if kind == "udp":
        return UDP(sport=port, dport=53) / Raw(data)
    return ICMPv6EchoRequest(id=port, seq=1, data=data)


@SETTINGS
@given(
    kind=st.sampled_from(["tcp", "udp", "echo"]),
    data=st.binary(max_size=1400),
    port=st.integers(1, 65535),
    hop_by_hop=st.booleans(),
    traffic_class=st.integers(0, 255),
    hop_limit=st.integers(1, 255),  # 0 is refused (test_..._refuses_hop_limit_zero)
    src4=unicast_v4,
    dst4=unicast_v4,
)
def test_round_trip_through_both_directions(
    kind: str,
    data: bytes,
    port: int,
    hop_by_hop: bool,
    traffic_class: int,
    hop_limit: int,
    src4: str,
    dst4: str,
) -> None:
    """translate_6to4 then translate_4to6 gives the datagram back (minus the extension header):
    payload, addresses, traffic class and hop limit survive."""
    src, dst = f"64:ff9b::{src4}", f"64:ff9b::{dst4}"
    upper = _upper(kind, data, port)
    chain = IPv6ExtHdrHopByHop() / upper if hop_by_hop else upper
    packet = bytes(IPv6(src=src, dst=dst, tc=traffic_class, hlim=hop_limit) / chain)
    there = one(translate_6to4(packet, MAPPER, NO_TTL))
    back = translate_4to6(there, MAPPER, NO_TTL)
    expected = bytes(
        IPv6(src=src, dst=dst, tc=traffic_class, hlim=hop_limit) / _upper(kind, data, port)
    )
    assert one(back) == expected


@SETTINGS
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert isinstance(translate(data, WITH_ERRORS), Translated | Drop | IcmpError)


@SETTINGS
@given(
    next_header=st.sampled_from([0, 6, 17, 43, 44, 51, 58, 60, 59, 253]),
    tail=st.binary(max_size=120),
)
def test_random_payload_behind_a_valid_header_never_raises(next_header: int, tail: bytes) -> None:
    packet = v6(Raw(tail), nh=next_header)
    assert isinstance(translate(packet, WITH_ERRORS), Translated | Drop | IcmpError)


@SETTINGS
@given(
    icmp_type=st.sampled_from([1, 2, 3, 4]),
    code=st.integers(0, 2),
    rest=st.binary(min_size=4, max_size=4),
    payload_length=st.integers(0, 0xFFFF),
    next_header=st.sampled_from([0, 6, 17, 43, 44, 58, 60, 253]),
    tail=st.binary(max_size=120),
)
def test_random_quoted_packet_never_raises(
    icmp_type: int, code: int, rest: bytes, payload_length: int, next_header: int, tail: bytes
) -> None:
    """The checksum is valid, so the fuzzed quote reaches the inner translation."""
    quoted = bytearray(quoted_v6(Raw(tail), nh=next_header))
    quoted[4:6] = struct.pack("!H", payload_length)
    packet = icmp6(icmp_type, code, rest, bytes(quoted))
    assert isinstance(translate(packet, WITH_ERRORS), Translated | Drop | IcmpError)


TRUNCATION_SAMPLES = {
    "udp": v6(udp()),
    "tcp behind extension headers": v6(IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / tcp()),
    "first fragment": v6(IPv6ExtHdrFragment(id=1, m=1) / udp()),
    "echo": v6(ICMPv6EchoRequest(id=1, seq=1, data=b"abc")),
    "error quoting tcp": icmp6(1, 4, bytes(4), quoted_v6(IPv6ExtHdrHopByHop() / tcp())),
    "packet too big": icmp6(2, 0, struct.pack("!I", 1280), quoted_v6(udp())),
}


@pytest.mark.parametrize("name", TRUNCATION_SAMPLES)
def test_every_truncation_never_raises(name: str) -> None:
    packet = TRUNCATION_SAMPLES[name]
    for end in range(len(packet)):
        assert isinstance(translate(packet[:end], WITH_ERRORS), Drop | IcmpError | Translated)
    for end in range(40, len(packet)):
        # The same cut with Payload Length matching: the parser cannot tell it was cut.
        cut = bytearray(packet[:end])
        cut[4:6] = struct.pack("!H", end - 40)
        assert isinstance(translate(bytes(cut), WITH_ERRORS), Drop | IcmpError | Translated)
