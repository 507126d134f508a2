"""Claims in the agent's core (onm.agent.claims; seed 0's automatic detection): a node sending
from, or ARPing as, an address that is not its own is dropped as spoofed and counted, and the
address is reported to the manager when it is in the node's network, at first sight and then
at most every `REFRESH`; gateways and outside addresses are never claims; bounded per node.

World (`support.agent_world`): a (10.0.0.2) and b on host r in znet 10.0.0.0/24.
"""

from __future__ import annotations

import datetime as dt

from scapy.all import ICMP, IP, Ether, raw

from onm.agent.actions import ReportClaims
from onm.agent.claims import FORGET_AFTER, MAX_PER_PORT, REFRESH
from onm.agent.counters import Event
from onm.packet.drop import DropReason
from support.agent_world import NOW, Lab, arp_request, lab

__all__ = ["lab"]  # the fixture


def send_from(lab: Lab, source: str, now: dt.datetime = NOW) -> list[object]:
    a = lab.nodes["a"]
    router = lab.r.tables.ports[a.interface].network.router_mac.hex(":")
    frame = raw(Ether(src=a.mac, dst=router) / IP(src=source, dst="10.0.0.4") / ICMP())
    return list(lab.r.node_frame(a.interface, frame, now))


def claims(actions: list[object]) -> list[tuple[str, str]]:
    return [
        (c.node_id, ".".join(map(str, c.ip)))
        for a in actions
        if isinstance(a, ReportClaims)
        for c in a.claims
    ]


def test_a_packet_from_an_address_not_its_own_is_dropped_and_claimed(lab: Lab) -> None:
    a = lab.nodes["a"].id
    assert claims(send_from(lab, "10.0.0.50")) == [(a, "10.0.0.50")]
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == 1
    assert send_from(lab, "10.0.0.50", NOW + REFRESH / 2) == []  # reported recently
    assert claims(send_from(lab, "10.0.0.50", NOW + REFRESH)) == [(a, "10.0.0.50")]
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == 3
    assert lab.r.counters.events[Event.CLAIMS_REPORTED] == 2


def test_a_gratuitous_arp_for_an_address_not_its_own_is_a_claim(lab: Lab) -> None:
    a = lab.nodes["a"]
    garp = arp_request(lab, "a", "10.0.0.51", sender_ip="10.0.0.51")
    assert claims(lab.r.node_frame(a.interface, garp, NOW)) == [(a.id, "10.0.0.51")]
    assert lab.r.counters.drops[DropReason.ARP_SPOOFED] == 1


def test_what_can_never_be_shared_is_never_a_claim(lab: Lab) -> None:
    """A gateway, the network and broadcast addresses, another node's own address (b's, g's),
    an address outside the network: dropped as spoofed, not reported."""
    sources = ("10.0.0.1", "10.0.0.0", "10.0.0.255", "10.0.0.4", "10.0.0.3", "192.168.1.9")
    for source in sources:
        assert send_from(lab, source) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == len(sources)


def test_a_node_claims_a_bounded_number_of_addresses(lab: Lab) -> None:
    for k in range(MAX_PER_PORT):
        assert claims(send_from(lab, f"10.0.0.{100 + k}"))
    assert send_from(lab, "10.0.0.200") == []  # full: counted, not reported
    assert lab.r.counters.events[Event.CLAIMS_IGNORED] == 1
    later = NOW + FORGET_AFTER
    assert claims(send_from(lab, "10.0.0.200", later))  # the old ones made room
