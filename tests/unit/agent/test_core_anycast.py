"""Edge pools in anycast mode in the agent's core (issue #10; seed 1: a router with ECMP picks
among gateways sharing an address, "spoofing a specified source network address ... not
actually used" steers it): a node's packet goes to the pool's anycast /64 from the node's
address steered to its flow's slot; any gateway of the pool takes it, verifies the steered
source and answers to that same steered address, which the node's host delivers to the node.
While a gateway is dead, new flows go in direct mode to the survivors.

World `support.edge_world` (`support.agent_world` plus: external network internet 30.0.0.0/16,
edge hosts gw1 and gw2, edge pool egress of znet in anycast mode hashed on the 5-tuple, gateways
e1 (gw1) and e2 (gw2), route 0.0.0.0/0 -> egress).
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from scapy.all import IP, TCP, Ether, IPv6, raw

from onm.addressing import (
    ANYCAST_VERSION,
    SubstrateAddress,
    anycast_prefix,
    steer,
    unsteered,
)
from onm.agent.actions import ToNode, ToSubstrate, ToTenant
from onm.agent.probes import DEAD_AFTER
from onm.agent.tables import router_mac
from onm.manager import edge_pools
from onm.model.edge_pool import HashField
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from onm.selection.flow import Flow, steering_slot
from support.agent_world import NOW, Lab, only
from support.agent_world import lab as world
from support.edge_world import EdgeWorld, edge_world

__all__ = ["world"]

SERVER = "30.0.2.2"
FIELDS = frozenset(HashField)


@pytest.fixture
def pool(world: Lab) -> EdgeWorld:
    made = edge_world(world, {"mode": "anycast", "hash": "src,dst,proto,sport,dport"})
    assert made.anycast is not None
    return made


def syn(lab: Lab, node: str, sport: int = 40000, flags: str = "S") -> bytes:
    n = lab.nodes[node]
    vni = lab.r.tables.ports[n.interface].network.vni
    return raw(
        Ether(src=n.mac, dst=format_mac(router_mac(vni)))
        / IP(src=str(n.ip), dst=SERVER)
        / TCP(sport=sport, dport=80, flags=flags)
    )


def test_the_manager_gives_the_pool_an_anycast_64_hosts_see_in_their_snapshots(
    pool: EdgeWorld,
) -> None:
    # The first anycast /64 of the default organisation: version 1, number 0.
    assert pool.anycast == anycast_prefix(0)
    assert str(pool.anycast) == "fd00:0:4000::/64"
    assert pool.anycast.version == ANYCAST_VERSION
    [entry] = pool.lab.r.tables.edge_pools.values()
    assert entry.anycast == pool.anycast.value
    assert pool.lab.r.tables.anycast_out == {pool.anycast.value.to_bytes(8, "big")}
    for core in pool.gw.values():  # each gateway takes the shared /64 as its own
        assert core.tables.anycast_in == {pool.anycast.value.to_bytes(8, "big")}
        [duty] = core.tables.duties.values()
        assert pool.anycast.value.to_bytes(8, "big") in duty.prefixes


def test_a_flow_goes_to_the_anycast_64_from_its_steered_source(pool: EdgeWorld) -> None:
    lab = pool.lab
    a = lab.nodes["a"]
    own = lab.r.tables.ports[a.interface].substrate
    slots = set()
    for sport in range(40000, 40040):
        [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", sport), NOW), ToSubstrate)
        [again] = only(lab.r.node_frame(a.interface, syn(lab, "a", sport), NOW), ToSubstrate)
        assert out.packet[8:40] == again.packet[8:40]  # one flow, one address pair
        where = SubstrateAddress.decode(out.packet[24:40])
        assert where.host == pool.anycast and str(where.ipv4) == SERVER
        assert where.network_id == pool.vni
        flow = Flow(a.ip.packed, ipaddress.IPv4Address(SERVER).packed, 6, sport, 80)
        assert out.packet[8:24] == steer(own, steering_slot(flow, FIELDS))
        assert unsteered(out.packet[8:24]) == unsteered(own)
        slots.add(out.packet[16] >> 2)
    assert len(slots) > 10  # 40 flows of one pair: many sources for the router to hash
    assert lab.r.egress.anycast_sent[next(iter(lab.r.tables.edge_pools))].packets == 80
    assert lab.r.egress.sent == {}  # the agent chose no gateway


@pytest.mark.parametrize("gateway", ["gw1", "gw2"])
def test_any_gateway_takes_it_and_answers_to_the_steered_address(
    pool: EdgeWorld, gateway: str
) -> None:
    lab = pool.lab
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", 41234), NOW), ToSubstrate)
    core = pool.gw[gateway]  # whichever the router picked
    [kernel] = only(core.substrate_packet(out.packet, NOW), ToTenant)
    sent = IP(kernel.packet)
    assert (sent.src, sent.dst, sent[TCP].sport) == (str(a.ip), SERVER, 41234)

    reply = raw(IP(src=SERVER, dst=str(a.ip), ttl=63) / TCP(sport=80, dport=41234, flags="SA"))
    [back] = only(core.tenant_packet(pool.vni, reply), ToSubstrate)
    assert back.packet[24:40] == out.packet[8:24]  # to the steered source the flow used
    assert back.packet[8:16] == pool.prefixes[gateway].to_bytes(8, "big")  # from its own /64
    got = lab.r.substrate_packet(back.packet, NOW)
    assert got, lab.r.counters.drops
    [delivered] = only(got, ToNode)
    assert delivered.interface == a.interface
    assert Ether(delivered.frame)[IP].src == SERVER


def test_a_steered_source_of_another_host_is_still_refused(pool: EdgeWorld) -> None:
    lab = pool.lab
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a"), NOW), ToSubstrate)
    forged = bytearray(out.packet)
    forged[15] ^= 0x01  # another host's /64, any slot
    core = pool.gw["gw1"]
    assert core.substrate_packet(bytes(forged), NOW) == []
    assert core.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1
    elsewhere = bytearray(out.packet)
    elsewhere[24:32] = (pool.anycast.value + 1).to_bytes(8, "big")  # not the pool's /64
    assert core.substrate_packet(bytes(elsewhere), NOW) == []
    assert core.counters.drops[DropReason.NOT_LOCAL_DESTINATION] == 1


def test_peers_do_not_take_steered_sources(pool: EdgeWorld) -> None:
    """Only gateways take steered variants as a node's source: node to node, the address is
    the node's own."""
    lab = pool.lab
    a, g = lab.nodes["a"], lab.nodes["g"]
    source = steer(lab.r.tables.ports[a.interface].substrate, 5)
    to_g = lab.s.tables.ports[g.interface].substrate
    forged = raw(
        IPv6(src=str(ipaddress.IPv6Address(source)), dst=str(ipaddress.IPv6Address(to_g)))
        / TCP(sport=1, dport=2)
    )
    assert lab.s.substrate_packet(forged, NOW) == []
    assert lab.s.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1


def test_while_a_gateway_is_dead_new_flows_go_direct_to_the_survivors(pool: EdgeWorld) -> None:
    lab = pool.lab
    a = lab.nodes["a"]
    now = NOW
    lab.r.on_timer(now)  # the first probes; nobody answers from here on
    interval = dt.timedelta(seconds=1.0)
    for _ in range(int(DEAD_AFTER) + 2):
        now += interval
        lab.r.on_timer(now)
    # Both silent: say gw2 answers again, so only gw1 is dead.
    alive = lab.r.egress.probes.targets
    gw2 = next(g for g, t in alive.items() if t.gateway.prefix == pool.prefixes["gw2"])
    alive[gw2].alive = True
    lab.r.egress._routes.clear()
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", 42000), now), ToSubstrate)
    assert out.packet[24:32] == pool.prefixes["gw2"].to_bytes(8, "big")  # direct, the survivor
    # The survivor's pinned flow stays direct when gw1 is back (it holds gw2's NAT state) ...
    for target in alive.values():
        target.alive = True
    lab.r.egress._routes.clear()
    [same] = only(lab.r.node_frame(a.interface, syn(lab, "a", 42000, "A"), now), ToSubstrate)
    assert same.packet[24:32] == pool.prefixes["gw2"].to_bytes(8, "big")
    # ... and a new flow goes anycast again.
    [new] = only(lab.r.node_frame(a.interface, syn(lab, "a", 42001), now), ToSubstrate)
    assert new.packet[24:32] == pool.anycast.value.to_bytes(8, "big")


def test_a_draining_gateway_sends_new_flows_direct(pool: EdgeWorld) -> None:
    """The router cannot know a gateway takes no new flows: the agent chooses meanwhile."""
    lab = pool.lab
    with lab.store.write(ADMIN, NOW) as tx:
        edge_pools.update_gateway(tx, "z/znet/egress", "e1", state="draining")
    pool.snapshot_all()
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", 42100), NOW), ToSubstrate)
    assert out.packet[24:32] == pool.prefixes["gw2"].to_bytes(8, "big")


def test_direct_mode_again_gives_the_64_back(pool: EdgeWorld) -> None:
    lab = pool.lab
    with lab.store.write(ADMIN, NOW) as tx:
        direct = edge_pools.update_pool(tx, "z/znet/egress", {"mode": "direct"})
        assert direct.anycast is None
    pool.snapshot_all()
    assert lab.r.tables.anycast_out == frozenset()
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", 42200), NOW), ToSubstrate)
    assert out.packet[24:32] in {p.to_bytes(8, "big") for p in pool.prefixes.values()}
    assert out.packet[8:24] == lab.r.tables.ports[a.interface].substrate  # not steered
