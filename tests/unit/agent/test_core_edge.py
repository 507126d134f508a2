"""Edge pools in the agent's core (issue #10; seed 1 FIG. 2C): a node's packet to an external
address leaves its host straight for the gateway its flow hashes to, with the destination
embedded behind the gateway's /64 (DESIGN.md section 2); the gateway's agent verifies the
sender and hands the IPv4 datagram to the network's interface; the reply comes back to the
node's host, which accepts external sources only from the network's gateways. Gateways are
probed; a silent one is dead and its flows move to the survivors, the others' stay.

World `support.edge_world` (`support.agent_world` plus: external network internet 30.0.0.0/16,
edge hosts gw1 and gw2, edge pool egress of znet with gateways e1 (gw1, 30.0.100.1) and e2 (gw2,
30.0.100.2), route 0.0.0.0/0 -> egress).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import Counter

import pytest
from scapy.all import IP, TCP, Ether, ICMPv6EchoReply, IPv6, raw

from onm.addressing import SubstrateAddress, agent_address
from onm.agent.actions import Action, ReportGateways, ToNode, ToSubstrate, ToTenant
from onm.agent.datapath.edge import _tenant
from onm.agent.egress import GatewayCounts, held_by
from onm.agent.metrics import edge_published
from onm.agent.probes import DEAD_AFTER
from onm.agent.splitting import WINDOW
from onm.agent.tables import GatewayEntry, router_mac
from onm.manager import edge_pools, edge_rules, public_ips
from onm.model.edge_rule import Action as RuleAction
from onm.model.edge_rule import Direction, Proto
from onm.model.ids import EdgePoolId, GatewayId
from onm.model.principal import ADMIN
from onm.netlink.gateway_plan import GatewayPlan, realise
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from onm.selection.flow import Flow, flow_of
from support.agent_world import NOW, Lab, only
from support.agent_world import lab as world
from support.edge_world import EdgeWorld, edge_world

__all__ = ["world"]

SERVER = "30.0.2.2"


@pytest.fixture
def edge(world: Lab) -> EdgeWorld:
    return edge_world(world, {})


def syn(lab: Lab, node: str, dst: str = SERVER, sport: int = 40000) -> bytes:
    n = lab.nodes[node]
    return raw(
        Ether(src=n.mac, dst=format_mac(router_mac(_vni(lab, node))))
        / IP(src=str(n.ip), dst=dst)
        / TCP(sport=sport, dport=80, flags="S")
    )


def _vni(lab: Lab, node: str) -> int:
    port = lab.r.tables.ports.get(lab.nodes[node].interface)
    assert port is not None
    return port.network.vni


def reports_of(actions: list[Action]) -> list[ReportGateways]:
    return [a for a in actions if isinstance(a, ReportGateways)]


def gateway_id(edge: EdgeWorld, name: str) -> GatewayId:
    [pool] = edge.lab.r.tables.edge_pools.values()
    return next(g.id for g in pool.gateways.values() if g.name == name)


def gateway_of(edge: EdgeWorld, packet: bytes) -> str:
    prefix = int.from_bytes(packet[24:32], "big")
    return next(name for name, value in edge.prefixes.items() if value == prefix)


def test_a_flow_goes_straight_to_its_gateway_and_its_reply_comes_back(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a"), NOW), ToSubstrate)
    where = SubstrateAddress.decode(out.packet[24:40])
    assert str(where.ipv4) == SERVER and where.network_id == edge.vni
    name = gateway_of(edge, out.packet)

    [kernel] = only(edge.gw[name].substrate_packet(out.packet, NOW), ToTenant)
    assert kernel.vni == edge.vni
    sent = IP(kernel.packet)
    assert (sent.src, sent.dst, sent[TCP].dport) == (str(a.ip), SERVER, 80)

    reply = raw(IP(src=SERVER, dst=str(a.ip), ttl=63) / TCP(sport=80, dport=40000, flags="SA"))
    [back] = only(edge.gw[name].tenant_packet(edge.vni, reply), ToSubstrate)
    assert IPv6(back.packet).dst == str(SubstrateAddress.decode(out.packet[8:24]).encode())
    [delivered] = only(lab.r.substrate_packet(back.packet, NOW), ToNode)
    frame = Ether(delivered.frame)
    assert delivered.interface == a.interface
    assert frame.src == format_mac(router_mac(edge.vni)) and frame[IP].src == SERVER


def test_one_flow_always_takes_one_gateway_and_flows_spread(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    seen = {}
    for i in range(64):
        dst = f"30.0.3.{i + 1}"
        [first] = only(lab.r.node_frame(a.interface, syn(lab, "a", dst), NOW), ToSubstrate)
        [again] = only(lab.r.node_frame(a.interface, syn(lab, "a", dst), NOW), ToSubstrate)
        assert first.packet[24:40] == again.packet[24:40]
        seen[dst] = gateway_of(edge, first.packet)
    assert set(seen.values()) == {"gw1", "gw2"}


def test_external_sources_are_accepted_only_from_the_networks_gateways(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    port = lab.r.tables.ports[a.interface]
    forged_from = lab.s.tables.prefix  # host s is no gateway
    source = ipaddress.IPv6Address(
        (forged_from << 64) | (edge.vni << 32) | int(ipaddress.IPv4Address(SERVER))
    )
    forged = raw(
        IPv6(src=str(source), dst=str(ipaddress.IPv6Address(port.substrate)), hlim=63)
        / ICMPv6EchoReply(id=1, seq=1)
    )
    assert lab.r.substrate_packet(forged, NOW) == []
    assert lab.r.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1


def test_a_gateway_takes_only_what_the_node_really_sent(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a"), NOW), ToSubstrate)
    name = gateway_of(edge, out.packet)
    core = edge.gw[name]
    forged = bytearray(out.packet)
    forged[15] ^= 0x01  # another host's /64 claims a's address
    assert core.substrate_packet(bytes(forged), NOW) == []
    inside = bytearray(out.packet)
    inside[36:40] = ipaddress.IPv4Address("10.0.0.3").packed  # "external", inside znet
    assert core.substrate_packet(bytes(inside), NOW) == []
    assert core.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] == 1
    assert core.counters.drops[DropReason.GATEWAY_INTERNAL_DESTINATION] == 1
    nobody = raw(IP(src=SERVER, dst="10.0.0.77") / TCP(sport=80, dport=1))
    assert core.tenant_packet(edge.vni, nobody) == []
    assert core.counters.drops[DropReason.GATEWAY_NO_RESIDENT] == 1


def test_no_route_is_dropped_and_no_gateway_answers_unreachable(edge: EdgeWorld) -> None:
    lab = edge.lab
    e1 = lab.nodes["e1"]  # zenc has no route
    frame = raw(
        Ether(src=e1.mac, dst=format_mac(router_mac(lab.r.tables.ports[e1.interface].network.vni)))
        / IP(src=str(e1.ip), dst=SERVER)
        / TCP(dport=80)
    )
    assert lab.r.node_frame(e1.interface, frame, NOW) == []
    assert lab.r.counters.drops[DropReason.NO_ROUTE] == 1


def probe_round(edge: EdgeWorld, now: dt.datetime, answering: set[str]) -> list[ReportGateways]:
    """Let r's timer run at `now`; the gateways in `answering` answer its probes. The reports
    that carry changes."""
    lab = edge.lab
    actions = lab.r.on_timer(now)
    reports = [a for a in actions if isinstance(a, ReportGateways)]
    for probe in (a for a in actions if isinstance(a, ToSubstrate)):
        name = gateway_of(edge, probe.packet)
        assert probe.packet[24:40] == agent_address(edge.prefixes[name])
        if name in answering:
            [answer] = only(edge.gw[name].substrate_packet(probe.packet, now), ToSubstrate)
            reports += only(lab.r.substrate_packet(answer.packet, now), ReportGateways)
    return [r for r in reports if r.changed]


def test_a_silent_gateway_is_dead_and_only_its_flows_move(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    flows = {f"30.0.4.{i}": "" for i in range(1, 101)}
    for dst in flows:
        [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", dst), NOW), ToSubstrate)
        flows[dst] = gateway_of(edge, out.packet)
    interval = dt.timedelta(seconds=1.0)  # the default probe interval
    now = NOW
    assert probe_round(edge, now, {"gw1", "gw2"}) == []
    for _ in range(int(DEAD_AFTER) + 2):
        now += interval
        reports = probe_round(edge, now, {"gw2"})
        if reports:
            break
    [report] = reports
    assert [(g.gateway_id, g.alive) for g in report.changed] == [(gateway_id(edge, "e1"), False)]
    assert {g.gateway_id: g.alive for g in report.gateways} == {
        gateway_id(edge, "e1"): False,
        gateway_id(edge, "e2"): True,
    }
    for dst, before in flows.items():
        [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", dst), now), ToSubstrate)
        assert gateway_of(edge, out.packet) == "gw2", (dst, before)
    moved = sum(1 for g in flows.values() if g == "gw1")
    assert lab.r.egress.flows.rehashed == moved > 0

    now += interval
    [back] = probe_round(edge, now, {"gw1", "gw2"})
    assert [(g.gateway_id, g.alive) for g in back.changed] == [(gateway_id(edge, "e1"), True)]


def test_a_routed_pools_heavy_pair_is_spread_over_its_gateways(edge: EdgeWorld) -> None:
    """Seed 1, splitting: `nat: none`, hashed on src,dst, split above 1 Mbit/s. Below the rate
    the pair's connections share one gateway; past it they spread, each flow on one gateway."""
    lab = edge.lab
    with lab.store.write(ADMIN, NOW) as tx:
        edge_pools.update_pool(
            tx, "z/znet/egress", {"nat": "none", "hash": "src,dst", "split_above": 1_000_000}
        )
    edge.snapshot_all()
    a = lab.nodes["a"]

    def gateways(first: int, count: int, at: dt.datetime) -> list[str]:
        out = []
        for sport in range(first, first + count):
            [sent] = only(
                lab.r.node_frame(a.interface, syn(lab, "a", sport=sport), at), ToSubstrate
            )
            out.append(gateway_of(edge, sent.packet))
        return out

    assert len(set(gateways(41000, 20, NOW))) == 1  # 20 SYNs: far under 1 Mbit/s
    heavy = raw(
        Ether(src=a.mac, dst=format_mac(router_mac(edge.vni)))
        / IP(src=str(a.ip), dst=SERVER)
        / TCP(sport=41000, dport=80, flags="A")
        / (b"x" * 1400)
    )
    for _ in range(120):  # 120 x 1.4 kB in one 1 s window: over 1 Mbit/s
        lab.r.node_frame(a.interface, heavy, NOW)
    assert len(set(gateways(41000, 20, NOW))) == 1  # a rate is a whole window's
    later = NOW + WINDOW
    spread = gateways(41000, 20, later)
    assert set(spread) == {"gw1", "gw2"}
    assert spread == gateways(41000, 20, later)  # each flow stays on its own gateway


def test_a_least_loaded_pools_new_flows_avoid_the_gateway_the_others_loaded(
    edge: EdgeWorld,
) -> None:
    """`choice: least-loaded`: the manager's answer says other senders pin 10 flows to e1; a's
    next 10 new flows go to e2, then they share; pinned flows stay. A hash pool ignores it."""
    lab = edge.lab
    a = lab.nodes["a"]
    lab.r.gateway_loads({gateway_id(edge, "e1"): 10, gateway_id(edge, "e2"): 0})

    def gateways(first: int, count: int) -> list[str]:
        out = []
        for sport in range(first, first + count):
            frame = syn(lab, "a", sport=sport)
            [sent] = only(lab.r.node_frame(a.interface, frame, NOW), ToSubstrate)
            out.append(gateway_of(edge, sent.packet))
        return out

    with lab.store.write(ADMIN, NOW) as tx:
        edge_pools.update_pool(tx, "z/znet/egress", {"hash": "src,dst,proto,sport,dport"})
    edge.snapshot_all()
    hashed = gateways(42000, 20)  # the pool is `hash` yet: the loads change nothing
    assert set(hashed) == {"gw1", "gw2"}
    with lab.store.write(ADMIN, NOW) as tx:
        edge_pools.update_pool(tx, "z/znet/egress", {"choice": "least-loaded"})
    edge.snapshot_all()
    lab.r.egress.flows.rebalance(next(iter(lab.r.tables.edge_pools)))  # a clean slate
    assert gateways(43000, 10) == ["gw2"] * 10
    assert Counter(gateways(43010, 10)) == {"gw1": 5, "gw2": 5}  # 15 each now
    assert gateways(43000, 20)[:10] == ["gw2"] * 10  # pinned: the same again
    pinned = {f.gateway_id: f.pinned for f in lab.r.egress.figures()}
    assert pinned == {gateway_id(edge, "e1"): 5, gateway_id(edge, "e2"): 15}  # own pins only


# --- public IPs and firewall rules (issue #10) -------------------------------------------------

PUBLIC = "30.0.100.50"


def with_public_ip(edge: EdgeWorld) -> str:
    """Give a a public IP and the pool a rule; every host re-reads its snapshot. The name of
    the gateway host holding the address."""
    with edge.lab.store.write(ADMIN, NOW) as tx:
        made = public_ips.add(tx, "z/znet/a", "egress", PUBLIC)
        edge_rules.add(tx, "z/znet/egress", "egress", "deny", "tcp", "8080")
    edge.snapshot_all()
    assert made.owner is not None
    return {"e1": "gw1", "e2": "gw2"}[made.owner.name]


def test_a_nodes_flows_leave_through_the_gateway_holding_its_public_ip(edge: EdgeWorld) -> None:
    lab = edge.lab
    holder = with_public_ip(edge)
    a, b = lab.nodes["a"], lab.nodes["b"]
    to_a, to_b = set(), set()
    for i in range(1, 41):
        dst = f"30.0.5.{i}"
        [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", dst), NOW), ToSubstrate)
        to_a.add(gateway_of(edge, out.packet))
        [out] = only(lab.r.node_frame(b.interface, syn(lab, "b", dst), NOW), ToSubstrate)
        to_b.add(gateway_of(edge, out.packet))
    assert to_a == {holder}
    assert to_b == {"gw1", "gw2"}  # b has no public IP: hashed as before


def test_an_inbound_connection_to_a_public_ip_reaches_the_node_and_is_answered_back(
    edge: EdgeWorld,
) -> None:
    lab = edge.lab
    holder = with_public_ip(edge)
    a = lab.nodes["a"]
    # The holder's kernel DNATed the client's SYN to a: its agent carries it to a's host.
    inbound = raw(IP(src="30.0.9.9", dst=str(a.ip), ttl=63) / TCP(sport=5555, dport=80, flags="S"))
    [crossing] = only(edge.gw[holder].tenant_packet(edge.vni, inbound), ToSubstrate)
    [delivered] = only(lab.r.substrate_packet(crossing.packet, NOW), ToNode)
    assert Ether(delivered.frame)[IP].src == "30.0.9.9"  # the client's real address
    reply = raw(
        Ether(src=a.mac, dst=format_mac(router_mac(edge.vni)))
        / IP(src=str(a.ip), dst="30.0.9.9")
        / TCP(sport=80, dport=5555, flags="SA")
    )
    [out] = only(lab.r.node_frame(a.interface, reply, NOW), ToSubstrate)
    assert gateway_of(edge, out.packet) == holder


def test_only_the_holder_puts_the_public_ip_in_its_kernel_and_every_gateway_the_rules(
    edge: EdgeWorld,
) -> None:
    holder = with_public_ip(edge)
    for name, core in edge.gw.items():
        duty = core.tables.duties[edge.vni]
        tenant = _tenant(duty)
        assert [(r.direction, r.action, r.proto, r.ports) for r in tenant.rules] == [
            (Direction.EGRESS, RuleAction.DENY, Proto.TCP, (8080, 8080))
        ]
        kernel = realise(GatewayPlan("ext0", (tenant,)))
        held = ipaddress.IPv4Address(PUBLIC) in kernel.addresses
        assert held is (name == holder), name
        assert [c.rule_id for c in kernel.counters if c.rule_id] == [duty.rules[0].id]


def test_while_the_holder_is_dead_the_nodes_flows_are_hashed(edge: EdgeWorld) -> None:
    lab = edge.lab
    holder = with_public_ip(edge)
    other = next(n for n in edge.gw if n != holder)
    now = NOW
    probe_round(edge, now, {"gw1", "gw2"})
    for _ in range(int(DEAD_AFTER) + 2):
        now += dt.timedelta(seconds=1.0)
        if probe_round(edge, now, {other}):
            break
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a", "30.0.6.1"), now), ToSubstrate)
    assert gateway_of(edge, out.packet) == other


def test_held_by_is_the_owner_only_while_it_is_alive(edge: EdgeWorld) -> None:
    lab = edge.lab
    holder = with_public_ip(edge)
    pool = next(iter(lab.r.tables.edge_pools.values()))
    owners = lab.r.tables.public_owners
    a, b = lab.nodes["a"].id, lab.nodes["b"].id
    found = held_by(pool, a, owners, lambda _: True)
    assert found is not None and found.local is False and gateway_host(edge, found) == holder
    assert held_by(pool, a, owners, lambda _: False) is None
    assert held_by(pool, b, owners, lambda _: True) is None


def gateway_host(edge: EdgeWorld, gateway: GatewayEntry) -> str:
    return next(name for name, value in edge.prefixes.items() if value == gateway.prefix)


def test_reports_carry_what_each_gateway_was_sent_and_an_edge_host_reports_its_own(
    edge: EdgeWorld,
) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    sent: dict[str, int] = {}
    for i in range(20):
        [out] = only(
            lab.r.node_frame(a.interface, syn(lab, "a", f"30.0.5.{i + 1}"), NOW), ToSubstrate
        )
        name = gateway_of(edge, out.packet)
        sent[name] = sent.get(name, 0) + 1
    [report] = reports_of(lab.r.on_timer(NOW))  # the first: at once
    by_name = {"gw1": gateway_id(edge, "e1"), "gw2": gateway_id(edge, "e2")}
    counts = {g.gateway_id: (g.alive, g.pinned, g.flows, g.packets) for g in report.gateways}
    assert counts == {by_name[n]: (True, c, c, c) for n, c in sent.items()}
    assert sum(g.bytes for g in report.gateways) == 20 * (len(syn(lab, "a")) - 14)  # IPv4
    assert reports_of(lab.r.on_timer(NOW + dt.timedelta(seconds=1))) == []
    assert reports_of(lab.r.on_timer(NOW + dt.timedelta(seconds=2))) != []
    [own] = reports_of(edge.gw["gw1"].on_timer(NOW))
    assert [(g.gateway_id, g.alive) for g in own.gateways] == [(by_name["gw1"], True)]


def test_a_rebalance_drops_the_pools_pins_once(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    for i in range(10):
        lab.r.node_frame(a.interface, syn(lab, "a", f"30.0.6.{i + 1}"), NOW)
    flows = lab.r.egress.flows
    assert len(flows.pins) == 10
    lab.snapshot("r", NOW)  # the same generation again: nothing moves
    assert len(flows.pins) == 10
    with lab.store.write(ADMIN, NOW) as tx:
        edge_pools.rebalance(tx, "z/znet/egress")
    lab.snapshot("r", NOW)
    assert (len(flows.pins), flows.rebalanced, sum(flows.pinned.values())) == (0, 10, 0)
    lab.r.node_frame(a.interface, syn(lab, "a", "30.0.6.1"), NOW)
    lab.snapshot("r", NOW)
    assert (len(flows.pins), flows.rebalanced) == (1, 10)


def test_the_metrics_copy_of_the_edge_figures(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a"), NOW), ToSubstrate)
    name = {"gw1": "e1", "gw2": "e2"}[gateway_of(edge, out.packet)]
    found = edge_published(lab.r.egress, lab.r.gateway.tenants, None)
    by_name = {g.gateway: g for g in found.gateways}
    assert (by_name[name].up, by_name[name].pinned, by_name[name].packets) == (True, 1, 1)
    assert found.flow_table["selections"] == 1 and found.tenants == {}
    gw = edge.gw[gateway_of(edge, out.packet)]
    gw.substrate_packet(out.packet, NOW)
    served = edge_published(gw.egress, gw.gateway.tenants, None)
    other = "e2" if name == "e1" else "e1"
    assert {g.gateway: g.up for g in served.gateways} == {name: True, other: None}
    assert served.tenants[edge.vni].egress_packets == 1


class TableMirror:
    """Another table of pins, in memory (`onm.agent.egress.PinMirror`; the kernel's onm_pins
    on the eBPF datapath)."""

    def __init__(self) -> None:
        self.pins: dict[tuple[EdgePoolId, Flow], GatewayId] = {}
        self.asked = 0

    def get(self, pool_id: EdgePoolId, flow: Flow) -> GatewayId | None:
        self.asked += 1
        return self.pins.get((pool_id, flow))

    def put(self, pool_id: EdgePoolId, flow: Flow, gateway_id: GatewayId) -> None:
        self.pins[(pool_id, flow)] = gateway_id


def test_a_flow_pinned_elsewhere_keeps_that_gateway_and_the_cores_choices_are_told(
    edge: EdgeWorld,
) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    egress = lab.r.egress
    mirror = TableMirror()
    egress.mirror = mirror
    [pool] = lab.r.tables.edge_pools.values()
    packet = syn(lab, "a", "30.0.7.1")
    [out] = only(lab.r.node_frame(a.interface, packet, NOW), ToSubstrate)
    hashed = gateway_id(edge, {"gw1": "e1", "gw2": "e2"}[gateway_of(edge, out.packet)])
    flow = flow_of(packet[14:])
    assert mirror.pins == {(pool.id, flow): hashed}  # the core's choice, told
    other = next(g for g in pool.gateways if g != hashed)
    egress.flows.rebalance(pool.id)
    mirror.pins[(pool.id, flow)] = other  # the kernel pinned it elsewhere meanwhile
    [again] = only(lab.r.node_frame(a.interface, packet, NOW), ToSubstrate)
    assert gateway_id(edge, {"gw1": "e1", "gw2": "e2"}[gateway_of(edge, again.packet)]) == other
    assert egress.flows.pinned == Counter({other: 1})
    asked = mirror.asked
    only(lab.r.node_frame(a.interface, packet, NOW), ToSubstrate)
    assert mirror.asked == asked  # held now: not asked again


def test_the_kernels_figures_are_added_to_the_cores(edge: EdgeWorld) -> None:
    lab = edge.lab
    a = lab.nodes["a"]
    egress = lab.r.egress
    [out] = only(lab.r.node_frame(a.interface, syn(lab, "a"), NOW), ToSubstrate)
    name = {"gw1": "e1", "gw2": "e2"}[gateway_of(edge, out.packet)]
    mine, other = gateway_id(edge, name), gateway_id(edge, "e2" if name == "e1" else "e1")
    egress.kernel_pinned = {other: 3}
    egress.kernel_sent = {mine: GatewayCounts(10, 1000, 2), other: GatewayCounts(5, 500, 3)}
    [report] = reports_of(lab.r.on_timer(NOW))
    counts = {g.gateway_id: (g.pinned, g.flows, g.packets, g.bytes) for g in report.gateways}
    size = len(syn(lab, "a")) - 14
    assert counts == {mine: (1, 3, 11, 1000 + size), other: (3, 3, 5, 500)}
    found = edge_published(egress, lab.r.gateway.tenants, None)
    assert {g.gateway: (g.pinned, g.packets) for g in found.gateways} == {
        name: (1, 11),
        "e2" if name == "e1" else "e1": (3, 5),
    }
