"""IPv4-in-IPv6 encapsulation (RFC 2473): onm's second encoding (DESIGN.md section 3)."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import ICMP, IP, TCP, UDP, IPv6, IPv6ExtHdrFragment, Raw, raw

from onm.addressing import HostPrefix, Location, embed_ipv4
from onm.packet import encap
from onm.packet.drop import DropReason
from onm.packet.mapper import Rfc6052Mapper, SubstrateMapper
from onm.packet.siit import Drop, IcmpError, SiitConfig, Translated
from support.oracle import single_packet as _one

MAPPER = Rfc6052Mapper("64:ff9b::/96")
ICMP_SOURCE = ipaddress.IPv4Address("192.0.2.254").packed


def _v4(**kw: object) -> bytes:
    fields = {"src": "192.0.2.1", "dst": "198.51.100.2", "ttl": 64}
    fields.update(kw)
    return raw(IP(**fields) / TCP(sport=1000, dport=80) / Raw(b"data"))


def test_outer_header_carries_mapped_addresses_and_protocol_4() -> None:
    inner = _v4(tos=0xB8)
    out = IPv6(_one(encap.encapsulate(inner, MAPPER)))
    assert out.nh == 4  # RFC 2473 section 4: IPv4 inside IPv6
    assert out.src == "64:ff9b::c000:201"
    assert out.dst == "64:ff9b::c633:6402"
    assert out.tc == 0xB8
    assert out.hlim == encap.TUNNEL_HOP_LIMIT
    assert out.plen == len(inner)


def test_inner_ttl_decremented_with_valid_checksum() -> None:
    inner = _v4(ttl=10)
    out = IPv6(_one(encap.encapsulate(inner, MAPPER)))
    got = IP(raw(out.payload))
    assert got.ttl == 9
    claimed = got.chksum
    del got.chksum
    assert IP(raw(got)).chksum == claimed  # scapy recomputes: the RFC 1624 update is right


def test_inner_untouched_without_ttl_decrement() -> None:
    inner = _v4(options=b"\x94\x04\x00\x00")  # Router Alert: options travel untouched
    out = _one(encap.encapsulate(inner, MAPPER, SiitConfig(decrement_ttl=False)))
    assert out[40:] == inner


def test_ttl_expiry_answers_time_exceeded() -> None:
    config = SiitConfig(icmp_source_v4=ICMP_SOURCE)
    result = encap.encapsulate(_v4(ttl=1), MAPPER, config)
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.TTL_EXPIRED
    icmp = IP(result.packet)
    assert (icmp[ICMP].type, icmp[ICMP].code) == (11, 0)
    assert icmp.dst == "192.0.2.1"


def test_df_packet_too_big_gets_fragmentation_needed_with_overhead_removed() -> None:
    config = SiitConfig(ipv6_mtu=1280, icmp_source_v4=ICMP_SOURCE)
    big = raw(IP(src="192.0.2.1", dst="198.51.100.2", flags="DF") / UDP() / Raw(b"x" * 1300))
    result = encap.encapsulate(big, MAPPER, config)
    assert isinstance(result, IcmpError)
    assert result.reason is DropReason.PACKET_TOO_BIG
    icmp = IP(result.packet)[ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 1280 - 40)


def test_no_icmp_source_means_plain_drop() -> None:
    big = raw(IP(src="192.0.2.1", dst="198.51.100.2", flags="DF") / UDP() / Raw(b"x" * 1300))
    result = encap.encapsulate(big, MAPPER, SiitConfig(ipv6_mtu=1280))
    assert result == Drop(DropReason.PACKET_TOO_BIG)


def test_df_clear_packet_too_big_is_fragmented_inside() -> None:
    config = SiitConfig(ipv6_mtu=1280, decrement_ttl=False)
    payload = bytes(range(256)) * 12
    big = raw(IP(src="192.0.2.1", dst="198.51.100.2", id=77) / UDP(sport=1, dport=2) / payload)
    result = encap.encapsulate(big, MAPPER, config)
    assert isinstance(result, Translated)
    assert len(result.packets) == 3
    data = b""
    for packet in result.packets:
        assert len(packet) <= 1280
        outer = IPv6(packet)
        assert IPv6ExtHdrFragment not in outer  # the outer packet is never fragmented
        inner = IP(raw(outer.payload))
        assert inner.id == 77
        assert inner.frag * 8 == len(data)
        data += raw(inner.payload)
        assert (inner.flags.MF == 1) == (packet is not result.packets[-1])
    assert data == raw(IP(big).payload)


def test_unmappable_address_is_dropped() -> None:
    class Nothing(Rfc6052Mapper):
        def destination_4to6(self, address: bytes) -> bytes | None:
            return None

    result = encap.encapsulate(_v4(), Nothing("64:ff9b::/96"))
    assert result == Drop(DropReason.ADDRESS_UNMAPPABLE)


def test_malformed_inner_is_dropped_by_reason() -> None:
    assert encap.encapsulate(b"\x45\x00", MAPPER) == Drop(DropReason.IPV4_TRUNCATED)


def test_decapsulate_returns_inner() -> None:
    inner = _v4()
    outer = _one(encap.encapsulate(inner, MAPPER, SiitConfig(decrement_ttl=False)))
    assert encap.decapsulate(outer, MAPPER) == inner


def test_decapsulate_strips_ethernet_padding_of_inner() -> None:
    inner = _v4()
    outer = raw(IPv6(src="64:ff9b::c000:201", dst="64:ff9b::c633:6402", nh=4) / Raw(inner))
    assert encap.decapsulate(outer + b"\x00" * 6, MAPPER) == inner


def test_decapsulate_refuses_inner_source_that_does_not_match_outer() -> None:
    # A sender may not put another node's IPv4 source inside its own outer address.
    spoofed = _v4(src="192.0.2.99")
    outer = raw(IPv6(src="64:ff9b::c000:201", dst="64:ff9b::c633:6402", nh=4) / Raw(spoofed))
    assert encap.decapsulate(outer, MAPPER) is DropReason.ENCAP_ADDRESS_MISMATCH


def test_decapsulate_refuses_other_payloads() -> None:
    udp = raw(IPv6(src="64:ff9b::c000:201", dst="64:ff9b::c633:6402") / UDP())
    assert encap.decapsulate(udp, MAPPER) is DropReason.ENCAP_BAD_INNER
    fragmented = raw(
        IPv6(src="64:ff9b::c000:201", dst="64:ff9b::c633:6402")
        / IPv6ExtHdrFragment(nh=4, m=1)
        / Raw(_v4())
    )
    assert encap.decapsulate(fragmented, MAPPER) is DropReason.ENCAP_BAD_INNER


def test_decapsulate_reports_broken_inner() -> None:
    bad = bytearray(_v4())
    bad[10] ^= 0xFF  # header checksum
    outer = raw(IPv6(src="64:ff9b::c000:201", dst="64:ff9b::c633:6402", nh=4) / Raw(bytes(bad)))
    assert encap.decapsulate(outer, MAPPER) is DropReason.IPV4_BAD_CHECKSUM


def test_substrate_mapper_round_trip() -> None:
    # DESIGN.md section 2: same substrate addresses as SIIT, network id 0x000102.
    r = HostPrefix(Location(1, 1, 1, 1))
    s = HostPrefix(Location(1, 1, 2, 1))
    a, g = ipaddress.IPv4Address("10.0.0.2").packed, ipaddress.IPv4Address("10.0.0.3").packed
    locations = {a: embed_ipv4(r, 0x102, a, slot=1), g: embed_ipv4(s, 0x102, g, slot=1)}
    mapper = SubstrateMapper(0x102, locations)
    inner = raw(IP(src="10.0.0.2", dst="10.0.0.3") / ICMP() / Raw(b"ping"))
    outer = _one(encap.encapsulate(inner, mapper, SiitConfig(decrement_ttl=False)))
    assert IPv6(outer).dst == str(ipaddress.IPv6Address(locations[g]))
    assert encap.decapsulate(outer, mapper) == inner
    other_network = SubstrateMapper(0x103, locations)
    assert encap.decapsulate(outer, other_network) is DropReason.ENCAP_ADDRESS_MISMATCH


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert isinstance(encap.encapsulate(data, MAPPER), Translated | Drop | IcmpError)
    assert isinstance(encap.decapsulate(data, MAPPER), bytes | DropReason)


def test_every_truncation_is_a_drop() -> None:
    outer = _one(encap.encapsulate(_v4(), MAPPER))
    for n in range(len(outer)):
        assert isinstance(encap.decapsulate(outer[:n], MAPPER), DropReason)
