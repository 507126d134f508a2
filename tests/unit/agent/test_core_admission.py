"""onm.agent.core: what is refused, on every path, and under which reason (issue #7, 2 and 3).

A node's malformed datagram must meet the same fate whether its destination is on its own host
(b, next to a on r) or across the substrate (g, on s): the same drop reason, or the same ICMP
error back to the node. A substrate packet an agent would never send (hop limit 0, a UDP length
that lies, an upper layer the network does not carry, an extension header, a Payload Length
that is not the frame's) is counted by its reason and never reaches a node; so is an
encapsulated datagram whose inner header is wrong. World: `support.agent_world`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from collections.abc import Callable

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, raw
from scapy.packet import Packet, Raw

from onm.agent.actions import Action, ReportClaims, ToNode, ToSubstrate
from onm.packet.checksum import internet_checksum
from onm.packet.drop import DropReason
from onm.packet.offload import TcpGso
from support.agent_world import NOW, Lab, lab, only, resolve_via_arp

__all__ = ["lab"]  # the fixture, used by name


# --- helpers -------------------------------------------------------------------------------------


def _fix_ipv4_checksum(header: bytearray, ihl: int = 20) -> None:
    struct.pack_into("!H", header, 10, 0)
    struct.pack_into("!H", header, 10, internet_checksum(bytes(header[:ihl])))


def _patched(packet: bytes, at: int, value: bytes, checksum: bool = True) -> bytes:
    """`packet` (IPv4) with `value` written at `at`, its header checksum made right again."""
    out = bytearray(packet)
    out[at : at + len(value)] = value
    if checksum:
        _fix_ipv4_checksum(out, max(20, (out[0] & 0x0F) * 4))
    return bytes(out)


def _udp_echo(src: str, dst: str, **ip: object) -> bytes:
    return raw(IP(src=src, dst=dst, **ip) / UDP(sport=4000, dport=4001) / Raw(b"onm-udp" * 8))


# Malformed datagrams a node might send, built from a good one: (name, make, reason).
NODE_CASES: list[tuple[str, Callable[[bytes], bytes], DropReason]] = [
    ("version-1", lambda p: _patched(p, 0, b"\x15"), DropReason.IPV4_BAD_VERSION),
    ("ihl-4", lambda p: _patched(p, 0, b"\x44", checksum=False), DropReason.IPV4_BAD_HEADER_LENGTH),
    (
        "total-longer",
        lambda p: _patched(p, 2, struct.pack("!H", len(p) + 9)),
        DropReason.IPV4_TRUNCATED,
    ),
    (
        "total-shorter",
        lambda p: _patched(p, 2, struct.pack("!H", len(p) - 9)),
        DropReason.IPV4_BAD_TOTAL_LENGTH,
    ),
    (
        "total-below-header",
        lambda p: _patched(p, 2, struct.pack("!H", 12)),
        DropReason.IPV4_BAD_TOTAL_LENGTH,
    ),
    (
        "bad-checksum",
        lambda p: _patched(p, 10, b"\x12\x34", checksum=False),
        DropReason.IPV4_BAD_CHECKSUM,
    ),
    ("esp", lambda p: _patched(p, 9, b"\x32"), DropReason.PROTOCOL_NOT_CARRIED),
    ("sctp", lambda p: _patched(p, 9, b"\x84"), DropReason.PROTOCOL_NOT_CARRIED),
    ("ipv6-in-ipv4", lambda p: _patched(p, 9, b"\x29"), DropReason.PROTOCOL_NOT_CARRIED),
    (
        "udp-length-long",
        lambda p: _patched(p, 24, struct.pack("!H", len(p) - 20 + 4)),
        DropReason.UDP_BAD_LENGTH,
    ),
    (
        "udp-length-short",
        lambda p: _patched(p, 24, struct.pack("!H", 9)),
        DropReason.UDP_BAD_LENGTH,
    ),
    ("fragment-past-64k", lambda p: _patched(p, 6, b"\x1f\xff"), DropReason.IPV4_BAD_FRAGMENT),
]


def _outcome(actions: list[Action]) -> list[tuple[str, bytes]]:
    """What the node or the substrate would see: ICMP errors back to the node, and nothing else."""
    seen = []
    for action in actions:
        if isinstance(action, ToNode):
            seen.append((action.interface, action.frame[14:]))
        elif isinstance(action, ToSubstrate):
            seen.append(("substrate", action.packet))
    return seen


def _from_a(lab: Lab, target: str) -> tuple[str, bytes, Callable[[bytes], list[Action]]]:
    """(a's interface, the Ethernet header of a's frames to `target`, a sender of such frames)."""
    a = lab.nodes["a"]
    dst_mac = resolve_via_arp(lab, "r", "a", target)
    ethernet = raw(Ether(src=a.mac, dst=dst_mac, type=0x0800))

    def send(packet: bytes) -> list[Action]:  # what goes on (a claim report is not a packet)
        sent = lab.r.node_frame(a.interface, ethernet + packet, NOW)
        return [x for x in sent if not isinstance(x, ReportClaims)]

    return a.interface, ethernet, send


LSRR = b"\x83\x07\x04\x0a\x00\x00\x09\x00"  # Loose Source Route via 10.0.0.9, unexpired


# --- defect 2: a node's frames, next door and far away ------------------------------------------


@pytest.mark.parametrize(("name", "make", "reason"), NODE_CASES, ids=[c[0] for c in NODE_CASES])
@pytest.mark.parametrize("target", ["10.0.0.4", "10.0.0.3"], ids=["same-host", "other-host"])
def test_malformed_ipv4_from_a_node_is_refused_wherever_it_goes(
    lab: Lab, name: str, make: Callable[[bytes], bytes], reason: DropReason, target: str
) -> None:
    _, _, send = _from_a(lab, target)
    good = _udp_echo("10.0.0.2", target)
    assert len(send(good)) == 1  # the datagram it was made from goes through
    assert send(make(good)) == []
    assert lab.r.counters.drops == {reason: 1}


@pytest.mark.parametrize(
    ("make", "reason", "icmp"),
    [
        # TTL 0: nobody may send it (RFC 1122 3.2.1.7); the gateway says Time Exceeded.
        (lambda p: _patched(p, 8, b"\x00"), DropReason.TTL_EXPIRED, (11, 0)),
        # An unexpired Loose Source Route: RFC 7915 4.1 drops it with 3/5.
        (
            lambda p: raw(
                IP(src="10.0.0.2", dst=IP(p).dst, options=LSRR) / UDP(sport=4000, dport=4001)
            ),
            DropReason.IPV4_SOURCE_ROUTE,
            (3, 5),
        ),
    ],
    ids=["ttl-0", "source-route"],
)
@pytest.mark.parametrize("target", ["10.0.0.4", "10.0.0.3"], ids=["same-host", "other-host"])
def test_what_the_translator_answers_the_node_hears_from_next_door_too(
    lab: Lab,
    make: Callable[[bytes], bytes],
    reason: DropReason,
    icmp: tuple[int, int],
    target: str,
) -> None:
    interface, _, send = _from_a(lab, target)
    [answer] = only(send(make(_udp_echo("10.0.0.2", target))), ToNode)
    assert answer.interface == interface  # back to a, from its gateway: nothing to b or g
    got = Ether(answer.frame)
    assert (got[IP].src, got[IP].dst) == ("10.0.0.1", "10.0.0.2")
    assert (got[ICMP].type, got[ICMP].code) == icmp
    assert lab.r.counters.drops == {reason: 1}


def test_same_host_and_other_host_agree_on_every_mangled_header(lab: Lab) -> None:
    """Each octet of a good datagram's header set to a few values: b (next door) and g (far
    away) get it, or refuse it for one reason, alike."""
    _, _, to_b = _from_a(lab, "10.0.0.4")
    _, _, to_g = _from_a(lab, "10.0.0.3")
    for at in range(28):
        for value in (0x00, 0x01, 0x45, 0x7F, 0xFF):
            for fix in (True, False):
                drops = []
                for send, target in ((to_b, "10.0.0.4"), (to_g, "10.0.0.3")):
                    packet = _patched(_udp_echo("10.0.0.2", target), at, bytes((value,)), fix)
                    if at in (16, 17, 18, 19):
                        continue  # the destination itself: where it goes is what differs
                    before = Counter(lab.r.counters.drops)
                    delivered = bool(send(packet))
                    after = lab.r.counters.drops - before
                    drops.append((delivered, sorted(after)))
                assert len(set(map(repr, drops))) <= 1, (at, value, fix, drops)


def test_a_short_frame_padded_by_ethernet_still_goes(lab: Lab) -> None:
    _, _, to_b = _from_a(lab, "10.0.0.4")
    short = raw(IP(src="10.0.0.2", dst="10.0.0.4") / UDP(sport=1, dport=2))  # 28 octets
    padded = short + bytes(60 - 14 - len(short))
    [out] = only(to_b(padded), ToNode)
    assert out.frame[14:42] == short
    # Past the 60-octet minimum, nothing pads: extra octets are refused.
    assert to_b(short + bytes(40)) == []
    assert lab.r.counters.drops == {DropReason.IPV4_BAD_TOTAL_LENGTH: 1}


# --- defect 3: what arrives from the substrate ---------------------------------------------------


def _a_to_g(lab: Lab) -> tuple[str, str]:
    """a's and g's substrate addresses (a lives on r: it may send to g on s)."""
    a = lab.r.tables.ports[lab.nodes["a"].interface].substrate
    g = lab.s.tables.ports[lab.nodes["g"].interface].substrate
    resolve_via_arp(lab, "s", "g", "10.0.0.2")
    return str(ipaddress.IPv6Address(a)), str(ipaddress.IPv6Address(g))


def _udp6(src: str, dst: str, hlim: int = 64, chain: Packet | None = None) -> bytes:
    udp = UDP(sport=4000, dport=4001) / Raw(b"onm-udp6" * 4)
    return raw(IPv6(src=src, dst=dst, hlim=hlim) / (chain / udp if chain else udp))


def _payload_length(packet: bytes, value: int) -> bytes:
    return packet[:4] + struct.pack("!H", value) + packet[6:]


SUBSTRATE_CASES: list[tuple[str, Callable[[str, str], bytes], DropReason]] = [
    ("hop-limit-0", lambda s, d: _udp6(s, d, hlim=0), DropReason.TTL_EXPIRED),
    (
        "udp-length-long",
        lambda s, d: raw(IPv6(src=s, dst=d) / UDP(sport=1, dport=2, len=99) / Raw(b"x" * 20)),
        DropReason.UDP_BAD_LENGTH,
    ),
    (
        "udp-length-short",
        lambda s, d: raw(IPv6(src=s, dst=d) / UDP(sport=1, dport=2, len=9) / Raw(b"x" * 20)),
        DropReason.UDP_BAD_LENGTH,
    ),
    (
        "no-next-header",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=59) / Raw(b"x" * 16)),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "esp",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=50) / Raw(b"x" * 16)),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "sctp",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=132) / Raw(b"x" * 16)),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "reserved-255",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=255) / Raw(b"x" * 16)),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "ipv6-in-ipv6",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=41) / IPv6(src=s, dst=d) / UDP()),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "ipv4-in-ipv6",
        lambda s, d: raw(IPv6(src=s, dst=d) / IP(src="10.0.0.2", dst="10.0.0.3") / UDP()),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "hop-by-hop",
        lambda s, d: _udp6(s, d, chain=IPv6ExtHdrHopByHop()),
        DropReason.IPV6_EXTENSION_NOT_CARRIED,
    ),
    (
        "garbage-hop-by-hop",
        lambda s, d: raw(
            IPv6(src=s, dst=d, nh=0)
            / Raw(b"\x11\x00\xff\xff\xff\xff\xff\xff")
            / UDP(sport=1, dport=2)
        ),
        DropReason.IPV6_EXTENSION_NOT_CARRIED,
    ),
    (
        "fragment-then-esp",
        lambda s, d: raw(IPv6(src=s, dst=d) / IPv6ExtHdrFragment(nh=50, m=1) / Raw(b"x" * 16)),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "payload-length-long",
        lambda s, d: _payload_length(_udp6(s, d), 200),
        DropReason.IPV6_TRUNCATED,
    ),
    (
        "payload-length-short",
        lambda s, d: _payload_length(_udp6(s, d), 20),
        DropReason.IPV6_BAD_PAYLOAD_LENGTH,
    ),
    ("under-40-octets", lambda s, d: _udp6(s, d)[:39], DropReason.IPV6_TRUNCATED),
    ("version-4", lambda s, d: b"\x40" + _udp6(s, d)[1:], DropReason.IPV6_BAD_VERSION),
    (
        "tcp-data-offset-3",
        lambda s, d: raw(IPv6(src=s, dst=d) / TCP(dataofs=3) / Raw(b"x" * 8)),
        DropReason.L4_TRUNCATED,
    ),
    (
        "tcp-header-past-the-end",
        lambda s, d: raw(IPv6(src=s, dst=d) / TCP(dataofs=15) / Raw(b"x" * 8)),
        DropReason.L4_TRUNCATED,
    ),
    (
        "icmpv6-of-4-octets",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=58) / Raw(b"\x80\x00\x00\x00")),
        DropReason.ICMP_TRUNCATED,
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "reason"), SUBSTRATE_CASES, ids=[c[0] for c in SUBSTRATE_CASES]
)
def test_what_no_agent_sends_is_refused_from_the_substrate(
    lab: Lab, name: str, make: Callable[[str, str], bytes], reason: DropReason
) -> None:
    a, g = _a_to_g(lab)
    assert len(only(lab.s.substrate_packet(_udp6(a, g), NOW), ToNode)) == 1  # the genuine one
    assert lab.s.substrate_packet(make(a, g), NOW) == []
    assert lab.s.counters.drops == {reason: 1}


def test_hop_limit_1_is_carried_unchanged(lab: Lab) -> None:
    """The agent is no router inside a network: TTL and hop limit cross unchanged."""
    a, g = _a_to_g(lab)
    [out] = only(lab.s.substrate_packet(_udp6(a, g, hlim=1), NOW), ToNode)
    assert Ether(out.frame)[IP].ttl == 1


def test_a_later_fragment_passes_as_data(lab: Lab) -> None:
    a, g = _a_to_g(lab)
    later = raw(IPv6(src=a, dst=g) / IPv6ExtHdrFragment(nh=17, offset=4, id=9) / Raw(b"x" * 32))
    [out] = only(lab.s.substrate_packet(later, NOW), ToNode)
    assert Ether(out.frame)[IP].frag == 4


def test_super_packets_from_the_substrate_are_checked_by_their_headers(lab: Lab) -> None:
    a, g = _a_to_g(lab)
    body = bytes(4000)

    def tcp6(**fields: object) -> bytes:
        return raw(IPv6(src=a, dst=g, **fields) / TCP(sport=1, dport=2, flags="A") / Raw(body))

    gso = TcpGso(1000)
    [ok] = only(lab.s.substrate_packet(tcp6()[:60], NOW, gso, body), ToNode)
    assert ok.gso == gso
    assert lab.s.substrate_packet(tcp6(hlim=0)[:60], NOW, gso, body) == []
    long = _payload_length(tcp6(), 20 + len(body) + 1)[:60]
    assert lab.s.substrate_packet(long, NOW, gso, body) == []
    assert lab.s.counters.drops == {DropReason.TTL_EXPIRED: 1, DropReason.IPV6_TRUNCATED: 1}


# --- encapsulation: the datagram inside ----------------------------------------------------------


def _e1_to_e2(lab: Lab) -> tuple[str, str]:
    e1 = lab.r.tables.ports[lab.nodes["e1"].interface].substrate
    e2 = lab.s.tables.ports[lab.nodes["e2"].interface].substrate
    resolve_via_arp(lab, "s", "e2", "10.1.0.2")
    return str(ipaddress.IPv6Address(e1)), str(ipaddress.IPv6Address(e2))


def _inner(**ip: object) -> bytes:
    return _udp_echo("10.1.0.2", "10.1.0.3", **ip)


ENCAP_CASES: list[tuple[str, Callable[[str, str], bytes], DropReason]] = [
    (
        "inner-ttl-0",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_inner(ttl=0))),
        DropReason.TTL_EXPIRED,
    ),
    (
        "inner-total-shorter",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_inner() + b"junk")),
        DropReason.IPV4_BAD_TOTAL_LENGTH,
    ),
    (
        "inner-total-longer",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_inner()[:-4])),
        DropReason.IPV4_TRUNCATED,
    ),
    (
        "inner-version-5",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_patched(_inner(), 0, b"\x55"))),
        DropReason.IPV4_BAD_VERSION,
    ),
    (
        "inner-bad-checksum",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_patched(_inner(), 10, b"\0\1", False))),
        DropReason.IPV4_BAD_CHECKSUM,
    ),
    (
        "inner-udp-length",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_patched(_inner(), 24, b"\0\x09"))),
        DropReason.UDP_BAD_LENGTH,
    ),
    (
        "inner-reserved-255",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=4) / Raw(_patched(_inner(), 9, b"\xff"))),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "outer-ipv6-in-ipv6",
        lambda s, d: raw(IPv6(src=s, dst=d, nh=41) / IPv6(src=s, dst=d) / UDP()),
        DropReason.PROTOCOL_NOT_CARRIED,
    ),
    (
        "outer-hop-by-hop",
        lambda s, d: raw(IPv6(src=s, dst=d) / IPv6ExtHdrHopByHop(nh=4) / Raw(_inner())),
        DropReason.IPV6_EXTENSION_NOT_CARRIED,
    ),
    (
        "outer-fragment",
        lambda s, d: raw(IPv6(src=s, dst=d) / IPv6ExtHdrFragment(nh=4) / Raw(_inner())),
        DropReason.IPV6_EXTENSION_NOT_CARRIED,
    ),
]


@pytest.mark.parametrize(("name", "make", "reason"), ENCAP_CASES, ids=[c[0] for c in ENCAP_CASES])
def test_a_bad_encapsulated_datagram_is_refused(
    lab: Lab, name: str, make: Callable[[str, str], bytes], reason: DropReason
) -> None:
    e1, e2 = _e1_to_e2(lab)
    genuine = raw(IPv6(src=e1, dst=e2, nh=4) / Raw(_inner()))
    assert len(only(lab.s.substrate_packet(genuine, NOW), ToNode)) == 1
    assert lab.s.substrate_packet(make(e1, e2), NOW) == []
    assert lab.s.counters.drops == {reason: 1}


def test_encapsulation_carries_what_siit_does_not(lab: Lab) -> None:
    """ESP, SCTP, GRE, IPv6 in IPv4: untouched inside IPv4 in IPv6, both ways."""
    _e1_to_e2(lab)
    e1_node = lab.nodes["e1"]
    e2_mac = resolve_via_arp(lab, "r", "e1", "10.1.0.3")
    for protocol in (50, 132, 47, 41):
        inner = raw(IP(src="10.1.0.2", dst="10.1.0.3", proto=protocol) / Raw(b"opaque" * 4))
        frame = raw(Ether(src=e1_node.mac, dst=e2_mac, type=0x0800)) + inner
        [sent] = only(lab.r.node_frame(e1_node.interface, frame, NOW), ToSubstrate)
        [out] = only(lab.s.substrate_packet(sent.packet, NOW), ToNode)
        assert out.frame[14:] == inner
    assert not lab.r.counters.drops and not lab.s.counters.drops
