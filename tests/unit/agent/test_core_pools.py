"""Pools in the agent's core (issue #9; seed 0 FIG. 2B): a requester ARPs the pool IP and gets
the pool's MAC; its packets go to the selected member; a member's health change moves it to the
next member with no new ARP; a member answers from the pool IP, nobody else may; a pool with no
member up fails closed with ICMP host unreachable, or keeps sending (fail-open).

World (`support.agent_world`): a and b on host r, g on host s, all in znet. Pool web on
10.0.0.9 with members b (a's own host: nearest) and g.
"""

from __future__ import annotations

import ipaddress

from scapy.all import ARP, ICMP, IP, Ether, raw
from sqlalchemy import update

from onm.addressing import SubstrateAddress
from onm.agent.actions import Resolve, ToNode, ToSubstrate
from onm.agent.counters import Event
from onm.manager import pools, tables
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from support.agent_world import NOW, Lab, lab, only, ping_frame, resolve_via_arp

__all__ = ["lab"]  # the fixture

POOL_IP = "10.0.0.9"


def make_pool(world: Lab, all_down: str = "fail-closed") -> str:
    with world.store.write(ADMIN, NOW) as tx:
        settings = {"check": {"kind": "none"}, "all_down": all_down}
        found = pools.create(tx, "web", "z/znet", POOL_IP, settings, ["b", "g"])
    world.snapshot("r")
    world.snapshot("s")
    return found.pool.mac


def set_health(world: Lab, node: str, health: str) -> None:
    m = tables.pool_members
    with world.store.write(ADMIN, NOW) as tx:
        node_id = world.nodes[node].id
        tx.connection.execute(update(m).where(m.c.node_id == node_id).values(health=health))
        tx.record("test.health", node_id, None, {}, {world.host_ids["r"], world.host_ids["s"]})
    world.snapshot("r")
    world.snapshot("s")


def test_the_pool_ip_is_answered_with_the_pool_mac(lab: Lab) -> None:
    pool_mac = make_pool(lab)
    assert resolve_via_arp(lab, "r", "a", POOL_IP) == pool_mac


def test_traffic_goes_to_the_nearest_member_then_fails_over_without_arp(lab: Lab) -> None:
    pool_mac = make_pool(lab)
    resolve_via_arp(lab, "r", "a", POOL_IP)
    a = lab.nodes["a"]
    frame = ping_frame(lab, "a", pool_mac, POOL_IP)
    [local] = only(lab.r.node_frame(a.interface, frame, NOW), ToNode)  # b: a's own host
    assert local.interface == lab.nodes["b"].interface
    assert Ether(local.frame)[IP].dst == POOL_IP
    pool_ip = ipaddress.IPv4Address(POOL_IP).packed  # b's load: what it was sent as the pool
    assert lab.r.monitor.delivered == {(local.interface, pool_ip): 1}

    set_health(lab, "b", "down")
    [out] = only(lab.r.node_frame(a.interface, frame, NOW), ToSubstrate)  # the same frame
    where = SubstrateAddress.decode(out.packet[24:40])
    assert (str(where.ipv4), where.slot, where.deliver_to_slot) == (POOL_IP, 1, True)
    assert lab.r.counters.events[Event.POOL_FAILOVERS] == 1
    [delivered] = only(lab.s.substrate_packet(out.packet, NOW), ToNode)
    assert delivered.interface == lab.nodes["g"].interface
    assert Ether(delivered.frame)[IP].dst == POOL_IP
    assert Ether(delivered.frame).dst == lab.nodes["g"].mac
    assert lab.s.monitor.delivered == {(delivered.interface, pool_ip): 1}

    set_health(lab, "b", "up")  # nearest moves back
    [back] = only(lab.r.node_frame(a.interface, frame, NOW), ToNode)
    assert back.interface == lab.nodes["b"].interface


def test_a_member_answers_from_the_pool_ip_and_the_requester_accepts_it(lab: Lab) -> None:
    pool_mac = make_pool(lab)
    set_health(lab, "b", "down")
    a_mac = resolve_via_arp(lab, "s", "g", "10.0.0.2")
    g = lab.nodes["g"]
    reply = raw(Ether(src=g.mac, dst=a_mac) / IP(src=POOL_IP, dst="10.0.0.2") / ICMP(type=0, id=7))
    [out] = only(lab.s.node_frame(g.interface, reply, NOW), ToSubstrate)
    [back] = only(lab.r.substrate_packet(out.packet, NOW), ToNode)
    frame = Ether(back.frame)
    assert back.interface == lab.nodes["a"].interface
    assert (frame[IP].src, frame.src) == (POOL_IP, pool_mac)


def test_nobody_else_may_send_from_the_pool_ip(lab: Lab) -> None:
    make_pool(lab)
    a = lab.nodes["a"]  # not a member
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    spoof = raw(Ether(src=a.mac, dst=g_mac) / IP(src=POOL_IP, dst="10.0.0.3") / ICMP())
    sent = lab.r.node_frame(a.interface, spoof, NOW)  # dropped: at most a claim to report
    assert not [x for x in sent if isinstance(x, ToNode | ToSubstrate)]
    assert lab.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == 1


def test_all_down_fails_closed_with_host_unreachable(lab: Lab) -> None:
    pool_mac = make_pool(lab)
    resolve_via_arp(lab, "r", "a", POOL_IP)
    set_health(lab, "b", "down")
    set_health(lab, "g", "down")
    a = lab.nodes["a"]
    [error] = only(
        lab.r.node_frame(a.interface, ping_frame(lab, "a", pool_mac, POOL_IP), NOW), ToNode
    )
    frame = Ether(error.frame)
    assert error.interface == a.interface
    assert (frame[ICMP].type, frame[ICMP].code, frame[IP].src) == (3, 1, "10.0.0.1")
    assert lab.r.counters.drops[DropReason.POOL_ALL_DOWN] == 1


def test_all_down_fails_open_to_the_members(lab: Lab) -> None:
    """With every member down, fail-open keeps each requester where it was (here g, where b's
    failure had moved it)."""
    pool_mac = make_pool(lab, all_down="fail-open")
    resolve_via_arp(lab, "r", "a", POOL_IP)
    set_health(lab, "b", "down")
    set_health(lab, "g", "down")
    a = lab.nodes["a"]
    frame = ping_frame(lab, "a", pool_mac, POOL_IP)
    [out] = only(lab.r.node_frame(a.interface, frame, NOW), ToSubstrate)
    [delivered] = only(lab.s.substrate_packet(out.packet, NOW), ToNode)
    assert delivered.interface == lab.nodes["g"].interface
    assert lab.r.counters.drops[DropReason.POOL_ALL_DOWN] == 0


def test_the_pool_mac_is_the_managers(lab: Lab) -> None:
    pool_mac = make_pool(lab)
    assert format_mac(bytes.fromhex(pool_mac.replace(":", ""))) == pool_mac
    assert (
        ipaddress.IPv4Address(POOL_IP)
        in lab.r.tables.ports[lab.nodes["b"].interface].network.cidrs[0]
    )


def test_a_ranked_pool_rotates_after_n_packets(lab: Lab) -> None:
    """`ranked` with `rotate_packets 3`: three packets to the first member, then the next leads
    (seed 0: use the best for N packets, then the next), with no new ARP."""
    with lab.store.write(ADMIN, NOW) as tx:
        settings = {"check": {"kind": "none"}, "policy": "ranked", "rotate_packets": 3}
        pool_mac = pools.create(tx, "rr", "z/znet", POOL_IP, settings, ["b", "g"]).pool.mac
    lab.snapshot("r")
    lab.snapshot("s")
    resolve_via_arp(lab, "r", "a", POOL_IP)
    a = lab.nodes["a"]
    frame = ping_frame(lab, "a", pool_mac, POOL_IP)
    went = []
    for _ in range(7):
        [out] = lab.r.node_frame(a.interface, frame, NOW)
        went.append("b" if isinstance(out, ToNode) else "g")
    assert went == ["b", "b", "b", "g", "g", "g", "b"]
    assert lab.r.counters.events[Event.POOL_ROTATIONS] == 2
    assert lab.r.counters.events[Event.POOL_FAILOVERS] == 0


def test_a_pool_made_again_is_announced_to_a_requester_still_using_the_old_mac(
    lab: Lab,
) -> None:
    """The pool deleted and created again on its IP gets a new MAC; the requester's ARP cache
    still says the old one. Its next packet is dropped (no mapping), the agent asks, and the
    answer is announced to the node (an unsolicited ARP reply), instead of the node waiting
    for its ARP entry to go stale (about 45 s on Linux)."""
    old_mac = make_pool(lab)
    resolve_via_arp(lab, "r", "a", POOL_IP)
    with lab.store.write(ADMIN, NOW) as tx:
        pools.delete_pool(tx, "z/znet/web")
    lab.snapshot("r")  # the agents hear of the deletion
    new_mac = make_pool(lab)
    assert new_mac != old_mac
    a = lab.nodes["a"]
    actions = lab.r.node_frame(a.interface, ping_frame(lab, "a", old_mac, POOL_IP), NOW)
    assert lab.r.counters.drops[DropReason.NO_MAPPING] == 1
    [ask] = [x for x in actions if isinstance(x, Resolve)]
    [announced] = only(lab.r.resolved(ask, lab.answer("r", ask), NOW), ToNode)
    frame = Ether(announced.frame)
    assert (frame.dst, frame[ARP].op, frame[ARP].psrc, frame[ARP].hwsrc) == (
        a.mac, 2, POOL_IP, new_mac,
    )  # fmt: skip
    assert lab.r.counters.events[Event.ARP_ANNOUNCED] == 1
    [sent] = only(
        lab.r.node_frame(a.interface, ping_frame(lab, "a", new_mac, POOL_IP), NOW), ToNode
    )
    assert sent.interface == lab.nodes["b"].interface  # and on it goes
