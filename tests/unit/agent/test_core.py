"""onm.agent.core: two agents and a manager talking in memory, no sockets (seed 0 FIG. 2A/2B).

World: tenant z, network znet 10.0.0.0/24 (SIIT) with a (10.0.0.2) and b (10.0.0.4) on host r
and g (10.0.0.3) on host s; network zenc 10.1.0.0/24 (encapsulation) with e1 on r and e2 on s;
tenant y, network ynet on the same CIDR as znet with y1 on s at a's IP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import (
    ARP,
    ICMP,
    IP,
    TCP,
    UDP,
    Ether,
    ICMPv6EchoRequest,
    IPv6,
    Raw,
    raw,
)

from onm.agent import tables as agent_tables
from onm.agent.actions import Report, Resolve, ToNode, ToSubstrate
from onm.agent.core import AgentCore
from onm.agent.counters import Event
from onm.manager import hosts, networks, nodes, reads, tenants
from onm.manager.store import Store
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from onm.packet.offload import TcpGso
from support.agent_world import (
    MTU,
    NOW,
    Lab,
    arp_request,
    lab,
    mac,
    only,
    ping_frame,
    resolve_via_arp,
)
from support.segments import nic_cut, segment_valid

__all__ = ["lab"]  # the fixture, used by name


# --- start-up ------------------------------------------------------------------------------------


def test_nothing_is_forwarded_before_a_snapshot() -> None:
    core = AgentCore(MTU)
    frame = raw(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.1"))
    assert core.node_frame("onmanything", frame, NOW) == []
    assert core.counters.drops[DropReason.UNKNOWN_PORT] == 1
    assert core.substrate_packet(raw(IPv6(dst="fd00::1") / UDP()), NOW) == []


def test_snapshot_is_reported_as_applied(lab: Lab) -> None:
    actions = lab.snapshot("r")
    assert actions == [Report(lab.r.tables.revision)]
    assert lab.r.tables.interfaces == {lab.nodes[n].interface for n in ("a", "b", "e1")}


# --- ARP -----------------------------------------------------------------------------------------


def test_gateway_arp_is_answered_with_the_router_mac(lab: Lab) -> None:
    learned = resolve_via_arp(lab, "r", "a", "10.0.0.1")
    vni = lab.r.tables.ports[lab.nodes["a"].interface].network.vni
    assert learned == format_mac(agent_tables.router_mac(vni))


def test_arp_miss_asks_the_manager_then_answers(lab: Lab) -> None:
    assert resolve_via_arp(lab, "r", "a", "10.0.0.3") == mac(lab, "g")
    assert lab.r.counters.events["resolutions"] == 1
    # Asked again: answered from the cache, the manager is not asked.
    assert resolve_via_arp(lab, "r", "a", "10.0.0.3") == mac(lab, "g")
    assert lab.r.counters.events["cache_hits"] == 1


def test_retransmitted_arp_waits_for_the_same_resolution(lab: Lab) -> None:
    a = lab.nodes["a"]
    first = lab.r.node_frame(a.interface, arp_request(lab, "a", "10.0.0.3"), NOW)
    second = lab.r.node_frame(a.interface, arp_request(lab, "a", "10.0.0.3"), NOW)
    assert len(first) == 1 and isinstance(first[0], Resolve)
    assert second == []  # already asked, less than a second ago
    replies = lab.r.resolved(first[0], lab.answer("r", first[0]), NOW)
    assert len(replies) == 2  # both requests answered


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("10.9.9.9", "arp_not_allowed"),  # outside the node's network
        ("10.0.0.2", "arp_gratuitous"),  # its own address: an announcement
    ],
)
def test_arp_that_gets_no_answer(lab: Lab, target: str, reason: str) -> None:
    a = lab.nodes["a"]
    assert lab.r.node_frame(a.interface, arp_request(lab, "a", target), NOW) == []
    assert lab.r.counters.events[reason] == 1


def test_arp_for_an_unknown_address_is_refused_and_not_asked_again_at_once(lab: Lab) -> None:
    a = lab.nodes["a"]
    [ask] = lab.r.node_frame(a.interface, arp_request(lab, "a", "10.0.0.99"), NOW)
    assert isinstance(ask, Resolve)
    assert lab.r.resolved(ask, lab.answer("r", ask), NOW) == []  # manager: no such node
    later = NOW + dt.timedelta(seconds=2)
    assert lab.r.node_frame(a.interface, arp_request(lab, "a", "10.0.0.99"), later) == []


def test_arp_claiming_another_address_is_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    forged = arp_request(lab, "a", "10.0.0.3", sender_ip="10.0.0.4")
    assert lab.r.node_frame(a.interface, forged, NOW) == []
    assert lab.r.counters.drops[DropReason.ARP_SPOOFED] == 1
    reply_for_other = raw(
        Ether(src=a.mac, dst=mac(lab, "b"))
        / ARP(op=2, hwsrc=a.mac, psrc="10.0.0.3", hwdst=mac(lab, "b"), pdst="10.0.0.4")
    )
    assert lab.r.node_frame(a.interface, reply_for_other, NOW) == []
    assert lab.r.counters.drops[DropReason.ARP_SPOOFED] == 2


def test_arp_from_another_mac_is_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    frame = raw(
        Ether(src="02:66:66:66:66:66", dst="ff:ff:ff:ff:ff:ff")
        / ARP(hwsrc="02:66:66:66:66:66", psrc="10.0.0.2", pdst="10.0.0.3")
    )
    assert lab.r.node_frame(a.interface, frame, NOW) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_MAC] == 1


# --- IPv4 across the substrate -------------------------------------------------------------------


def test_ping_crosses_the_substrate_and_comes_back(lab: Lab) -> None:
    a, g = lab.nodes["a"], lab.nodes["g"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    out = lab.r.node_frame(a.interface, ping_frame(lab, "a", g_mac, "10.0.0.3"), NOW)
    [sent] = only(out, ToSubstrate)
    six = IPv6(sent.packet)
    with lab.store.read(ADMIN, NOW) as tx:
        snap_s = reads.snapshot(tx, "s")
    g_address = next(n.substrate_address for n in snap_s.nodes if n.node.name == "g")
    assert six.dst == str(g_address)
    assert six.nh == 58  # ICMPv6: re-headered, not encapsulated
    delivered = lab.s.substrate_packet(sent.packet, NOW)
    [frame] = only(delivered, ToNode)
    assert frame.interface == g.interface
    got = Ether(frame.frame)
    assert (got.src, got.dst) == (a.mac, g.mac)
    assert (got[IP].src, got[IP].dst, got[ICMP].type, raw(got[ICMP].payload)) == (
        "10.0.0.2",
        "10.0.0.3",
        8,
        b"onm-ping",
    )
    claimed = got[IP].chksum
    del got[IP].chksum
    assert IP(raw(got[IP])).chksum == claimed
    # The reply: g resolves a through its own agent, and the path back works the same way.
    a_mac = resolve_via_arp(lab, "s", "g", "10.0.0.2")
    assert a_mac == a.mac
    reply = raw(
        Ether(src=g.mac, dst=a_mac) / IP(src="10.0.0.3", dst="10.0.0.2") / ICMP(type=0, id=7)
    )
    [back] = only(lab.s.node_frame(g.interface, reply, NOW), ToSubstrate)
    [home] = only(lab.r.substrate_packet(back.packet, NOW), ToNode)
    assert home.interface == a.interface and Ether(home.frame)[ICMP].type == 0


def test_tcp_checksum_survives_the_round_trip(lab: Lab) -> None:
    a, g = lab.nodes["a"], lab.nodes["g"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    segment = raw(
        Ether(src=a.mac, dst=g_mac)
        / IP(src="10.0.0.2", dst="10.0.0.3", flags="DF")
        / TCP(sport=40000, dport=80, flags="PA")
        / Raw(b"GET / HTTP/1.0\r\n\r\n")
    )
    [sent] = only(lab.r.node_frame(a.interface, segment, NOW), ToSubstrate)
    [frame] = only(lab.s.substrate_packet(sent.packet, NOW), ToNode)
    got = Ether(frame.frame)
    claimed = got[TCP].chksum
    del got[TCP].chksum
    assert IP(raw(got[IP]))[TCP].chksum == claimed
    assert frame.interface == g.interface


def test_same_host_delivery_is_direct(lab: Lab) -> None:
    a, b = lab.nodes["a"], lab.nodes["b"]
    b_mac = resolve_via_arp(lab, "r", "a", "10.0.0.4")
    frame = ping_frame(lab, "a", b_mac, "10.0.0.4")
    [out] = only(lab.r.node_frame(a.interface, frame, NOW), ToNode)
    assert out.interface == b.interface and out.frame == frame


def test_encapsulated_network_carries_the_ipv4_packet_whole(lab: Lab) -> None:
    e1, e2 = lab.nodes["e1"], lab.nodes["e2"]
    e2_mac = resolve_via_arp(lab, "r", "e1", "10.1.0.3")
    frame = ping_frame(lab, "e1", e2_mac, "10.1.0.3", options=b"\x94\x04\x00\x00")
    [sent] = only(lab.r.node_frame(e1.interface, frame, NOW), ToSubstrate)
    assert IPv6(sent.packet).nh == 4
    [out] = only(lab.s.substrate_packet(sent.packet, NOW), ToNode)
    assert out.interface == e2.interface
    assert out.frame[14:] == frame[14:]  # options and all


def test_df_packet_too_big_gets_fragmentation_needed_from_the_gateway(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    big = raw(
        Ether(src=a.mac, dst=g_mac)
        / IP(src="10.0.0.2", dst="10.0.0.3", flags="DF")
        / UDP()
        / Raw(b"x" * 1600)
    )
    [icmp] = only(lab.r.node_frame(a.interface, big, NOW), ToNode)
    got = Ether(icmp.frame)
    assert (got[ICMP].type, got[ICMP].code, got[ICMP].nexthopmtu) == (3, 4, MTU - 20)
    assert got[IP].src == "10.0.0.1" and got.dst == a.mac


# --- TCP super-frames (GSO) ----------------------------------------------------------------------
# A node's kernel hands over 64 KiB TCP frames to be cut later; the core passes them on whole when
# each segment fits, with their checksum field partial. `nic_cut` cuts them as a device would.

PAYLOAD = bytes(range(256)) * 40  # 10240 octets: 7 segments of 1448 and one of 104
GSO = TcpGso(1448)
TIMESTAMPS = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]  # a 32-octet TCP header


def wire(action: ToNode | ToSubstrate) -> bytes:
    """What the datapath sends for `action`: headers, then the payload left where it arrived."""
    head = action.frame if isinstance(action, ToNode) else action.packet
    return head + bytes(action.payload)


def super_frame(lab: Lab, src: str, dst_mac: str, dst_ip: str, src_ip: str | None = None) -> bytes:
    node = lab.nodes[src]
    return raw(
        Ether(src=node.mac, dst=dst_mac)
        / IP(src=src_ip or str(node.ip), dst=dst_ip, flags="DF", id=7)
        / TCP(sport=40000, dport=5201, seq=1000, flags="A", options=TIMESTAMPS)
        / Raw(PAYLOAD)
    )


def test_super_frame_crosses_the_substrate_whole(lab: Lab) -> None:
    a, g = lab.nodes["a"], lab.nodes["g"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    [sent] = only(
        lab.r.node_frame(a.interface, super_frame(lab, "a", g_mac, "10.0.0.3"), NOW, GSO),
        ToSubstrate,
    )
    assert sent.gso == GSO and len(sent.packet) == 40 + 32 and bytes(sent.payload) == PAYLOAD
    segments = nic_cut(wire(sent), GSO.size)
    assert len(segments) == 8 and all(segment_valid(s) for s in segments)
    assert max(len(s) for s in segments) == MTU  # each segment fills the substrate exactly
    assert IPv6(segments[0]).nh == 6
    # Host s passes it to g whole as well, re-headered as IPv4 with g's and a's addresses.
    resolve_via_arp(lab, "s", "g", "10.0.0.2")
    [frame] = only(lab.s.substrate_packet(sent.packet, NOW, GSO, sent.payload), ToNode)
    assert frame.interface == g.interface and frame.gso == GSO
    got = Ether(wire(frame))
    assert (got.src, got.dst, got[IP].src, got[IP].dst) == (a.mac, g.mac, "10.0.0.2", "10.0.0.3")
    assert got[IP].flags.DF
    [again] = lab.s.substrate_packet(wire(sent), NOW, GSO)  # given whole: the same but the IP ID
    assert isinstance(again, ToNode) and len(wire(again)) == len(wire(frame))
    delivered = nic_cut(wire(frame)[14:], GSO.size)
    assert all(segment_valid(s) for s in delivered)
    assert b"".join(raw(IP(s)[TCP].payload) for s in delivered) == PAYLOAD


def test_super_frame_whose_segments_do_not_fit_gets_fragmentation_needed(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    too_big = TcpGso(1460)  # segments of 20 + 32 + 1460 octets: 40 + 32 + 1460 > MTU
    [icmp] = only(
        lab.r.node_frame(a.interface, super_frame(lab, "a", g_mac, "10.0.0.3"), NOW, too_big),
        ToNode,
    )
    got = Ether(icmp.frame)
    assert (got[ICMP].type, got[ICMP].code, got[ICMP].nexthopmtu) == (3, 4, MTU - 20)
    assert icmp.gso is None


def test_super_packet_too_big_for_the_node_is_dropped(lab: Lab) -> None:
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    [sent] = only(
        lab.r.node_frame(
            lab.nodes["a"].interface, super_frame(lab, "a", g_mac, "10.0.0.3"), NOW, GSO
        ),
        ToSubstrate,
    )
    resolve_via_arp(lab, "s", "g", "10.0.0.2")
    # Say a GRO'd it out of larger segments than g's link carries (1500 - 20 - 32 = 1448): each
    # such segment is too big for g, so the whole is, as it would be cut (the agent sends no
    # ICMPv6 errors of its own: the IPv4 side's are what nodes learn their MTU from).
    assert lab.s.substrate_packet(wire(sent), NOW, TcpGso(1449)) == []
    assert lab.s.counters.drops[DropReason.PACKET_TOO_BIG] == 1


def test_super_frame_on_the_same_host_goes_whole(lab: Lab) -> None:
    a, b = lab.nodes["a"], lab.nodes["b"]
    b_mac = resolve_via_arp(lab, "r", "a", "10.0.0.4")
    frame = super_frame(lab, "a", b_mac, "10.0.0.4")
    [out] = only(lab.r.node_frame(a.interface, frame, NOW, GSO), ToNode)
    assert out.interface == b.interface and out.gso == GSO
    assert out.frame[:14] == frame[:14] and len(wire(out)) == len(frame)
    assert all(segment_valid(s) for s in nic_cut(wire(out)[14:], GSO.size))


def test_encapsulated_super_frame_is_cut_before_the_substrate(lab: Lab) -> None:
    e1, e2 = lab.nodes["e1"], lab.nodes["e2"]
    e2_mac = resolve_via_arp(lab, "r", "e1", "10.1.0.3")
    frame = super_frame(lab, "e1", e2_mac, "10.1.0.3")
    gso = TcpGso(1428)  # e1's link: 1520 - 40 for the outer header
    sent = only(lab.r.node_frame(e1.interface, frame, NOW, gso), ToSubstrate)
    assert len(sent) == 8 and all(s.gso is None for s in sent)
    assert all(IPv6(s.packet).nh == 4 and len(s.packet) <= MTU for s in sent)
    assert all(segment_valid(raw(IPv6(s.packet)[IP])) for s in sent)
    # Received whole (GRO merges IPv4 in IPv6 as well), it is opened and passed on whole.
    resolve_via_arp(lab, "s", "e2", "10.1.0.2")
    outer = IPv6(sent[0].packet)
    packet = raw(IPv6(src=outer.src, dst=outer.dst, nh=4) / IP(frame[14:]))
    [out] = only(lab.s.substrate_packet(packet, NOW, gso), ToNode)
    assert out.interface == e2.interface and out.gso == gso
    assert all(segment_valid(s) for s in nic_cut(wire(out)[14:], gso.size))


def test_super_frames_are_checked_like_any_frame(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    forged = super_frame(lab, "a", g_mac, "10.0.0.3", src_ip="10.0.0.4")
    assert lab.r.node_frame(a.interface, forged, NOW, GSO) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == 1
    # From the substrate: a super-packet claiming to come from a, sent from host s's /64.
    [sent] = only(
        lab.r.node_frame(a.interface, super_frame(lab, "a", g_mac, "10.0.0.3"), NOW, GSO),
        ToSubstrate,
    )
    forged6 = (
        sent.packet[:8]
        + lab.s.tables.ports[lab.nodes["g"].interface].substrate[:8]
        + wire(sent)[16:]
    )
    assert lab.s.substrate_packet(forged6, NOW, GSO) == []
    assert lab.s.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1


def test_super_frame_that_is_not_tcp_is_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    udp = raw(
        Ether(src=a.mac, dst=g_mac) / IP(src="10.0.0.2", dst="10.0.0.3") / UDP() / Raw(PAYLOAD)
    )
    assert lab.r.node_frame(a.interface, udp, NOW, GSO) == []
    assert lab.r.counters.drops[DropReason.PROTOCOL_UNTRANSLATABLE] == 1


# --- what a node may not do ----------------------------------------------------------------------


def test_forged_source_ip_is_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    forged = raw(Ether(src=a.mac, dst=g_mac) / IP(src="10.0.0.4", dst="10.0.0.3") / ICMP())
    assert lab.r.node_frame(a.interface, forged, NOW) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == 1


def test_forged_source_mac_is_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    forged = raw(Ether(src=mac(lab, "b"), dst="02:00:00:00:00:03") / IP(src="10.0.0.2") / ICMP())
    assert lab.r.node_frame(a.interface, forged, NOW) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_MAC] == 1


def test_unresolved_destination_is_dropped_and_resolved_in_the_background(lab: Lab) -> None:
    a = lab.nodes["a"]
    frame = ping_frame(lab, "a", mac(lab, "g"), "10.0.0.3")
    [ask] = lab.r.node_frame(a.interface, frame, NOW)
    assert isinstance(ask, Resolve) and ask.ip == bytes((10, 0, 0, 3))
    assert lab.r.counters.drops[DropReason.NO_MAPPING] == 1
    lab.r.resolved(ask, lab.answer("r", ask), NOW)
    assert only(lab.r.node_frame(a.interface, frame, NOW), ToSubstrate)


def test_destination_ip_must_match_the_resolved_mac(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    wrong = ping_frame(lab, "a", g_mac, "10.0.0.4")
    assert lab.r.node_frame(a.interface, wrong, NOW) == []
    assert lab.r.counters.drops[DropReason.DESTINATION_MISMATCH] == 1


def test_routed_destination_outside_the_network_is_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    router = resolve_via_arp(lab, "r", "a", "10.0.0.1")
    out = ping_frame(lab, "a", router, "8.8.8.8")
    assert lab.r.node_frame(a.interface, out, NOW) == []
    assert lab.r.counters.drops[DropReason.NO_ROUTE] == 1


def test_other_ethertypes_are_dropped(lab: Lab) -> None:
    a = lab.nodes["a"]
    frame = raw(Ether(src=a.mac, dst="33:33:00:00:00:01") / IPv6() / UDP())
    assert lab.r.node_frame(a.interface, frame, NOW) == []
    assert lab.r.counters.drops[DropReason.ETHERTYPE_UNSUPPORTED] == 1


# --- what the substrate may not deliver ----------------------------------------------------------


def _substrate_ping(src: str, dst: str) -> bytes:
    return raw(IPv6(src=src, dst=dst, hlim=64) / Raw(raw(ICMP())))


def test_forged_substrate_source_is_dropped(lab: Lab) -> None:
    with lab.store.read(ADMIN, NOW) as tx:
        snap_s = reads.snapshot(tx, "s")
    g_address = str(next(n.substrate_address for n in snap_s.nodes if n.node.name == "g"))
    # Claims to be a (10.0.0.2 in znet) but from host s's /64 instead of r's.
    vni = lab.s.tables.ports[lab.nodes["g"].interface].network.vni
    forged_source = str(
        ipaddress.IPv6Address(
            bytes.fromhex("fd000000010102010400") + vni.to_bytes(3, "big")[1:] + b"\x0a\x00\x00\x02"
        )
    )
    packet = raw(IPv6(src=forged_source, dst=g_address, nh=58) / Raw(b"\x80\x00\x00\x00" * 2))
    assert lab.s.substrate_packet(packet, NOW) == []
    assert lab.s.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1


def test_a_local_nodes_address_arriving_from_the_substrate_is_forged(lab: Lab) -> None:
    # a and b both live on r, so a's packets to b never cross the substrate: one that arrives
    # there with a's very address was sent by another host.
    with lab.store.read(ADMIN, NOW) as tx:
        snap_r = reads.snapshot(tx, "r")
    where = {n.node.name: str(n.substrate_address) for n in snap_r.nodes}
    packet = raw(IPv6(src=where["a"], dst=where["b"], hlim=64) / ICMPv6EchoRequest(id=7))
    assert lab.r.substrate_packet(packet, NOW) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1


def test_substrate_packet_for_no_local_node_is_dropped(lab: Lab) -> None:
    assert lab.s.substrate_packet(_substrate_ping("fd00::1", "fd00:0:101:201::99"), NOW) == []
    assert lab.s.counters.drops[DropReason.NOT_LOCAL_DESTINATION] == 1


def test_other_tenants_network_cannot_reach_a_node(lab: Lab) -> None:
    # a's packet (znet) re-addressed to y1 (ynet, same IP range, same host s): refused.
    with lab.store.read(ADMIN, NOW) as tx:
        snap_s = reads.snapshot(tx, "s")
        snap_r = reads.snapshot(tx, "r")
    y1 = next(n.substrate_address for n in snap_s.nodes if n.node.name == "y1")
    a_address = next(n.substrate_address for n in snap_r.nodes if n.node.name == "a")
    packet = raw(IPv6(src=str(a_address), dst=str(y1), nh=58) / Raw(raw(ICMP())))
    assert lab.s.substrate_packet(packet, NOW) == []
    assert lab.s.counters.drops[DropReason.NETWORK_MISMATCH] == 1


def test_other_tenant_cannot_resolve_across_networks(lab: Lab) -> None:
    # y1 (ynet) asks for 10.0.0.3, which is g's address only in znet: nobody there.
    y1 = lab.nodes["y1"]
    [ask] = lab.s.node_frame(y1.interface, arp_request(lab, "y1", "10.0.0.3"), NOW)
    assert isinstance(ask, Resolve)
    assert lab.answer("s", ask) is None


# --- static stability and change ----------------------------------------------------------------


def test_expired_mapping_keeps_forwarding_and_asks_for_a_refresh(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    later = NOW + dt.timedelta(hours=1)  # long expired, manager unreachable meanwhile
    actions = lab.r.node_frame(a.interface, ping_frame(lab, "a", g_mac, "10.0.0.3"), later)
    assert [type(x) for x in actions] == [Resolve, ToSubstrate]
    assert lab.r.resolve_failed(actions[0], later) == []
    again = lab.r.node_frame(a.interface, ping_frame(lab, "a", g_mac, "10.0.0.3"), later)
    assert any(isinstance(x, ToSubstrate) for x in again)


def test_fresh_mapping_is_not_refreshed(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    soon = NOW + dt.timedelta(seconds=300 - 75 - 1)  # the default 300 s: due with 75 s left
    actions = lab.r.node_frame(a.interface, ping_frame(lab, "a", g_mac, "10.0.0.3"), soon)
    assert [type(x) for x in actions] == [ToSubstrate]
    assert lab.r.counters.events[Event.REFRESHES] == 0


def test_mapping_in_its_last_75_of_300_seconds_is_refreshed_by_traffic(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    due = NOW + dt.timedelta(seconds=300 - 75 + 1)
    actions = lab.r.node_frame(a.interface, ping_frame(lab, "a", g_mac, "10.0.0.3"), due)
    assert [type(x) for x in actions] == [Resolve, ToSubstrate]
    assert lab.r.counters.events[Event.REFRESHES] == 1


@pytest.mark.parametrize("seconds", [8, 60, 3600])
def test_a_short_or_long_lifetime_is_refreshed_in_its_own_last_quarter(
    lab: Lab, seconds: int
) -> None:
    """The refresh point follows the lifetime the manager granted, not a fixed 75 s: the
    refreshed answer replaces the old one, which then never expires in use."""
    lab.ttl = dt.timedelta(seconds=seconds)
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    frame = ping_frame(lab, "a", g_mac, "10.0.0.3")
    quarter = lab.ttl / 4
    before = NOW + lab.ttl - quarter - dt.timedelta(milliseconds=100)
    assert [type(x) for x in lab.r.node_frame(a.interface, frame, before)] == [ToSubstrate]
    after = NOW + lab.ttl - quarter + dt.timedelta(milliseconds=100)
    [ask, sent] = lab.r.node_frame(a.interface, frame, after)
    assert isinstance(ask, Resolve) and isinstance(sent, ToSubstrate)
    assert lab.r.counters.events[Event.REFRESHES] == 1
    assert lab.r.resolved(ask, lab.answer("r", ask, after), after) == []
    expired = NOW + lab.ttl  # the first answer's expiry: the refreshed one is in use
    lab.r.on_timer(expired)
    assert lab.r.counters.events[Event.CACHE_EXPIRED] == 0
    assert [type(x) for x in lab.r.node_frame(a.interface, frame, expired)] == [ToSubstrate]
    renewed = after + lab.ttl - quarter + dt.timedelta(milliseconds=100)  # and again, later
    [ask, sent] = lab.r.node_frame(a.interface, frame, renewed)
    assert isinstance(ask, Resolve) and isinstance(sent, ToSubstrate)
    assert lab.r.counters.events[Event.REFRESHES] == 2


def test_restart_recovers_mappings_from_the_snapshot(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    restarted = AgentCore(MTU)
    lab.r = restarted
    lab.snapshot("r")  # the grant given to r comes back with the snapshot
    frame = ping_frame(lab, "a", g_mac, "10.0.0.3")
    assert only(restarted.node_frame(a.interface, frame, NOW), ToSubstrate)


def test_moved_node_is_followed_without_a_new_arp(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    with lab.store.write(ADMIN, NOW) as tx:
        nodes.delete_node(tx, "g", "z/znet")
        moved = nodes.create(tx, "g", "z/znet", "r", "10.0.0.3")
    lab.snapshot("r")
    frame = ping_frame(lab, "a", g_mac, "10.0.0.3")  # the node still uses the old MAC
    [out] = only(lab.r.node_frame(a.interface, frame, NOW), ToNode)
    assert out.interface == moved.interface  # now on the same host: delivered directly


def test_deleted_node_is_forgotten(lab: Lab) -> None:
    a = lab.nodes["a"]
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    with lab.store.write(ADMIN, NOW) as tx:
        nodes.delete_node(tx, "g", "z/znet")
    lab.snapshot("r")
    frame = ping_frame(lab, "a", g_mac, "10.0.0.3")
    assert all(isinstance(x, Resolve) for x in lab.r.node_frame(a.interface, frame, NOW))
    assert lab.r.counters.drops[DropReason.NO_MAPPING] == 1


# --- robustness ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    core = _shared_core()
    interface = next(iter(core.tables.ports))
    port = core.tables.ports[interface]
    core.node_frame(interface, data, NOW)
    core.node_frame(interface, bytes(6) + port.mac + data, NOW)
    core.node_frame(interface, bytes(6) + port.mac + b"\x08\x00" + port.ip * 4 + data, NOW)
    core.node_frame(interface, bytes(6) + port.mac + b"\x08\x06" + data, NOW)
    core.substrate_packet(data, NOW)
    core.substrate_packet(b"\x60" + bytes(23) + port.substrate + data, NOW)


_CORE: list[AgentCore] = []


def _shared_core() -> AgentCore:
    if not _CORE:
        store = Store("sqlite://")
        store.migrate()
        with store.write(ADMIN, NOW) as tx:
            tenants.create(tx, "z")
            hosts.create(tx, "r", "fd00:0:101:101::/64")
            networks.create(tx, "z", "znet", ["10.0.0.0/24"])
            nodes.create(tx, "a", "z/znet", "r", "10.0.0.2")
        with store.read(ADMIN, NOW) as tx:
            snap = reads.snapshot(tx, "r")
        core = AgentCore(MTU)
        core.apply_snapshot(snap, NOW)
        _CORE.append(core)
    return _CORE[0]
