"""Edge pools, both datapaths: node_ingress against the agent core's egress (issue #11).

The agent core's world with edge pool egress (`support.edge_world`: gateways e1 on gw1, e2 on
gw2, route 0.0.0.0/0) fills the maps of node_ingress.o as the eBPF adapter would (node a's
port, its network, and `edge_maps` of r's tables and liveness); then many flows run through
both r's core and the program with BPF_PROG_TEST_RUN: every redirected frame must be byte for
byte the core's substrate packet (so the gateway is the same), a drop the core's reason, and
what the kernel does not choose (least-loaded choice, splitting, anycast, no live gateway,
routes inside the network) the slow path's, untouched. A node's public IP sends its flows by
the holder while it lives, as the core's `held_by`. A random choice is the
kernel's own: each new flow pinned to a live gateway, its frames byte for byte the core's once
the core holds the same pin. Pins stay when a
gateway joins or drains, a dead gateway's flows move; a pin holds only while its serial, the
pool's generation and the idle timeout say so. One test proves the C flow hash is `flow_hash`
bit for bit, through a table of 4096 gateways.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import random
import struct
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw, raw

from onm.addressing import agent_address, unsteered
from onm.agent.actions import ToSubstrate
from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.edge_maps import EdgeMaps, edge_maps, pin_key, route_key, write_edge
from onm.agent.datapath.ebpf.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from onm.agent.datapath.ebpf.maps import holds_public_ip, port_value
from onm.agent.probes import DEAD_AFTER
from onm.agent.tables import router_mac
from onm.manager import edge_pools, hosts, public_ips, routes
from onm.model.edge_pool import HashField
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from onm.selection.flow import Flow, flow_hash, flow_of
from support import bpf_harness
from support.agent_world import NOW, Lab, only
from support.agent_world import lab as world
from support.bpf_harness import LOOPBACK, SUBSTRATE_IFINDEX, Loaded, Outcome
from support.edge_world import EdgeWorld, edge_world

__all__ = ["world"]

SlowPath = layout.SlowPath
ANYCAST = "the anycast /64"
"""`Both.run`'s name for where a flow sent to the pool's shared /64 went."""


@pytest.fixture(name="node")
def node_fixture() -> Iterator[Loaded]:
    """A fresh node_ingress.o per test: no pins left from another world."""
    loaded = Loaded("node_ingress", "onm_node_ingress")
    yield loaded
    loaded.close()


class Both:
    """Node a of r's world, on both datapaths: the core and node_ingress with its maps."""

    def __init__(self, edge: EdgeWorld, node: Loaded) -> None:
        self.edge = edge
        self.lab: Lab = edge.lab
        self.node = node
        self.a = self.lab.nodes["a"]
        self.written: EdgeMaps | None = None
        self.sync()

    def sync(self) -> None:
        """The maps as the adapter writes them after a snapshot or a liveness change."""
        tables = self.lab.r.tables
        port = tables.ports[self.a.interface]
        node = self.node
        node.clear()
        node.maps.set_config(SUBSTRATE_IFINDEX)
        public = holds_public_ip(tables, port)
        node.put("onm_ports", layout.PortKey(LOOPBACK), port_value(port, port.network.vni, public))
        made = edge_maps(tables, self.lab.r.egress.probes.alive, self.written)
        write_edge(node.maps, made, self.written)
        self.written = made

    def frame(self, dst: str, sport: int = 40000, proto: str = "tcp", size: int = 0) -> bytes:
        l4 = {
            "tcp": TCP(sport=sport, dport=80, flags="S"),
            "udp": UDP(sport=sport, dport=53),
            "icmp": ICMP(id=sport, seq=1),
        }[proto]
        return raw(
            Ether(src=self.a.mac, dst=format_mac(router_mac(self.edge.vni)))
            / IP(src=str(self.a.ip), dst=dst)
            / l4
            / Raw(bytes(size))
        )

    def run(self, frame: bytes, now: dt.datetime = NOW) -> tuple[Outcome, str | None]:
        """Both datapaths on one frame: the kernel's outcome (checked against the core's) and
        the gateway (host name) the core sent it to."""
        drops = dict(self.lab.r.counters.drops)
        actions = self.lab.r.node_frame(self.a.interface, frame, now)
        out = self.node.run(frame)
        sent = [a for a in actions if isinstance(a, ToSubstrate)]
        gateway = None
        if len(sent) == 1 and len(actions) == 1:
            prefix = int.from_bytes(sent[0].packet[24:32], "big")
            gateway = next((n for n, v in self.edge.prefixes.items() if v == prefix), None)
            anycast = self.edge.anycast
            if anycast is not None and prefix == anycast.value:
                gateway = ANYCAST  # the router chooses
        if out.verdict == TC_ACT_REDIRECT:
            assert [a.packet for a in sent] == [out.packet[14:]], (actions, out)
            assert len(actions) == 1 and gateway is not None
            assert out.packet[:14] == frame[:12] + b"\x86\xdd"
        elif out.verdict == TC_ACT_SHOT:
            assert actions == [], actions
            assert out.drop is not None
            assert self.lab.r.counters.drops[out.drop] == drops.get(out.drop, 0) + 1
        else:
            assert out.verdict == TC_ACT_OK and out.packet == frame
        return out, gateway

    def probe_round(self, now: dt.datetime, answering: set[str]) -> None:
        """r's probes at `now`, answered by the gateways in `answering`; the maps synced."""
        lab = self.lab
        for probe in (a for a in lab.r.on_timer(now) if isinstance(a, ToSubstrate)):
            prefix = int.from_bytes(probe.packet[24:32], "big")
            name = next(n for n, v in self.edge.prefixes.items() if v == prefix)
            assert probe.packet[24:40] == agent_address(prefix)
            if name in answering:
                for answer in only(
                    self.edge.gw[name].substrate_packet(probe.packet, now), ToSubstrate
                ):
                    lab.r.substrate_packet(answer.packet, now)
        self.sync()


def both(world: Lab, node: Loaded, settings: dict[str, object] | None = None) -> Both:
    return Both(edge_world(world, settings or {}), node)


def flows(count: int, seed: int = 11) -> list[tuple[str, int, str, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        dst = f"30.0.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
        out.append((dst, rng.randrange(1024, 65536), rng.choice(("tcp", "udp", "icmp")), 0))
    return out


def test_flows_take_the_cores_gateway_byte_for_byte(world: Lab, node: Loaded) -> None:
    b = both(world, node)
    seen: dict[str, int] = {}
    for dst, sport, proto, size in flows(300):
        out, gateway = b.run(b.frame(dst, sport, proto, size))
        assert out.verdict == TC_ACT_REDIRECT, (dst, sport, proto, out.slow)
        assert gateway is not None
        seen[gateway] = seen.get(gateway, 0) + 1
        again, same = b.run(b.frame(dst, sport, proto, 100))  # pinned: the same gateway
        assert again.verdict == TC_ACT_REDIRECT and same == gateway
    assert set(seen) == {"gw1", "gw2"} and min(seen.values()) > 100, seen


@pytest.mark.parametrize("fields", ["src,dst", "src,dst,proto,sport,dport", "dst,dport"])
def test_every_hash_field_set_agrees(world: Lab, node: Loaded, fields: str) -> None:
    b = both(world, node, {"hash": fields})
    for dst, sport, proto, size in flows(150, seed=len(fields)):
        out, _ = b.run(b.frame(dst, sport, proto, size))
        assert out.verdict == TC_ACT_REDIRECT, out


def test_pinned_flows_stay_when_a_gateway_joins(world: Lab, node: Loaded) -> None:
    b = both(world, node)
    before = {}
    for dst, sport, proto, _ in flows(200):
        before[(dst, sport, proto)] = b.run(b.frame(dst, sport, proto))[1]
    with world.store.write(ADMIN, NOW) as tx:
        host, _ = hosts.create(tx, "gw3", "fd00:0:101:903::/64", role="edge", external="internet")
        b.edge.prefixes["gw3"] = host.prefix.value
        edge_pools.add_gateway(tx, "z/znet/egress", "e3", "gw3", "30.0.100.3")
    b.edge.snapshot_all()
    b.sync()
    for (dst, sport, proto), gateway in before.items():
        out, now = b.run(b.frame(dst, sport, proto))
        assert out.verdict == TC_ACT_REDIRECT and now == gateway
    new = [b.run(b.frame(dst, sport, proto))[1] for dst, sport, proto, _ in flows(200, seed=5)]
    assert "gw3" in new  # new flows do take the table rebuilt with e3


def test_a_dead_gateways_flows_move_and_the_others_stay(world: Lab, node: Loaded) -> None:
    b = both(world, node)
    before = {}
    for dst, sport, proto, _ in flows(200):
        before[(dst, sport, proto)] = b.run(b.frame(dst, sport, proto))[1]
    now = NOW
    b.probe_round(now, {"gw1", "gw2"})
    for _ in range(int(DEAD_AFTER) + 2):
        now += dt.timedelta(seconds=1)
        b.probe_round(now, {"gw2"})
    [pool] = b.lab.r.tables.edge_pools.values()
    alive = {g.name: b.lab.r.egress.probes.alive(g.id) for g in pool.gateways.values()}
    assert alive == {"e1": False, "e2": True}
    for (dst, sport, proto), gateway in before.items():
        out, after = b.run(b.frame(dst, sport, proto), now)
        assert out.verdict == TC_ACT_REDIRECT and after == "gw2", (gateway, after)
    assert b.lab.r.egress.flows.rehashed == sum(g == "gw1" for g in before.values()) > 0


def test_no_live_gateway_goes_slow_and_no_route_is_dropped(world: Lab, node: Loaded) -> None:
    b = both(world, node)
    now = NOW
    b.probe_round(now, set())
    for _ in range(int(DEAD_AFTER) + 2):
        now += dt.timedelta(seconds=1)
        b.probe_round(now, set())
    out, _ = b.run(b.frame("30.0.9.9"), now)
    assert out.slow is SlowPath.EDGE_NO_GATEWAY  # the core answers host unreachable
    with world.store.write(ADMIN, NOW) as tx:
        routes.remove(tx, "z/znet", "0.0.0.0/0")
    b.edge.snapshot_all(now)
    b.sync()
    out, _ = b.run(b.frame("30.0.9.9"), now)
    assert out.drop is DropReason.NO_ROUTE
    bad = bytearray(b.frame("30.0.9.9", proto="icmp"))
    bad[14 + 20 + 2] ^= 0xFF  # a bad ICMP checksum: no route is what the core says first
    out, _ = b.run(bytes(bad), now)
    assert out.drop is DropReason.NO_ROUTE


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"choice": "least-loaded"}, SlowPath.EDGE_CHOICE),
        ({"nat": "none", "split_above": 1_000_000}, SlowPath.EDGE_SPLIT),
    ],
)
def test_what_the_core_chooses_goes_slow(
    world: Lab, node: Loaded, settings: dict[str, object], why: SlowPath
) -> None:
    b = both(world, node, settings)
    for dst, sport, proto, size in flows(20):
        out, _ = b.run(b.frame(dst, sport, proto, size))
        assert out.slow is why, out
    out, _ = b.run(b.frame("10.0.0.3"))  # to the router MAC inside the network
    assert out.slow is SlowPath.ROUTED


def test_a_random_choice_pins_each_new_flow_to_a_live_gateway(world: Lab, node: Loaded) -> None:
    """`choice: random` in the kernel: a new flow takes the table's entry for a random number
    and keeps it (the pin); with the core given the same pin (as the adapter's mirror gives
    it) the frames are the core's byte for byte; a flow whose pin is gone may choose anew."""
    b = both(world, node, {"choice": "random"})
    [pool] = world.r.tables.edge_pools.values()
    by_prefix = {g.prefix: g for g in pool.gateways.values()}
    chosen: dict[tuple[str, int, str], str] = {}
    for dst, sport, proto, size in flows(300):
        frame = b.frame(dst, sport, proto, size)
        out = node.run(frame)
        assert out.verdict == TC_ACT_REDIRECT, out.slow
        gateway = by_prefix[int.from_bytes(out.packet[14 + 24 : 14 + 32], "big")]
        world.r.egress.flows.adopt(pool.id, flow_of(frame[14:]), gateway.id, NOW)
        [sent] = world.r.node_frame(b.a.interface, frame, NOW)
        assert isinstance(sent, ToSubstrate) and sent.packet == out.packet[14:]
        again = node.run(b.frame(dst, sport, proto, 100))
        assert again.packet[14 + 24 : 14 + 32] == out.packet[14 + 24 : 14 + 32]  # pinned
        chosen[(dst, sport, proto)] = gateway.name
    counts = Counter(chosen.values())
    assert set(counts) == {"e1", "e2"} and min(counts.values()) > 75, counts
    pins = node.maps["onm_pins"]
    for key in pins.entries():
        pins.delete(layout.PinKey.from_buffer_copy(key))
    moved = 0
    for (dst, sport, proto), name in chosen.items():
        out = node.run(b.frame(dst, sport, proto))
        moved += by_prefix[int.from_bytes(out.packet[14 + 24 : 14 + 32], "big")].name != name
    assert 75 < moved < 225, moved  # about half: not the flow's hash


def test_c_flow_hash_is_flow_hash(node: Loaded) -> None:
    """4096 gateways, entry i of the table naming gateway i mod 4096, gateway g at the /64
    fd00:0:0:g::: the destination tells (flow_hash mod 16381) mod 4096, for many flows and
    every hash field set."""
    bpf_harness.fill_node(
        node, bpf_harness.AGENT, bpf_harness.v4("10.0.0.1"), bytes(16), bytes(4), None
    )
    vni = bpf_harness.VNI
    node.maps["onm_routes"].update(route_key(vni, 0, bytes(4)), layout.RouteValue(0))
    gateways = layout.GATEWAY_SLOTS
    for slot in range(gateways):
        prefix = (0xFD00_0000_0000_0000 | slot).to_bytes(8, "big")
        node.maps["onm_edge_gateways"].update(
            layout.IndexKey(slot),
            layout.EdgeGatewayValue(
                prefix=(ctypes.c_uint8 * 8).from_buffer_copy(prefix),
                pool=0,
                serial=slot + 1,
                flags=int(layout.EdgeGatewayFlag.ALIVE | layout.EdgeGatewayFlag.ACTIVE),
            ),
        )
    for i in range(layout.MAGLEV_STRIDE):
        node.maps["onm_maglev"].update(layout.IndexKey(i), layout.MaglevValue(i % gateways))
    rng = random.Random(7)
    field_sets = [
        frozenset({HashField.SRC, HashField.DST}),
        frozenset(HashField),
        frozenset({HashField.PROTO, HashField.SPORT}),
        frozenset({HashField.DPORT}),
    ]
    for generation, fields in enumerate(field_sets):
        bits = sum(int(layout.HashFlag[f.name]) for f in fields)
        node.maps["onm_edge_pools"].update(
            layout.IndexKey(0),
            layout.PoolValue(table_size=layout.MAGLEV_STRIDE, generation=generation, fields=bits),
        )
        for _ in range(250):
            src = bytes((10, 0, 0, 1))
            dst = bytes((rng.randrange(11, 200), *rng.randbytes(3)))
            proto, sport, dport = rng.choice((6, 17)), rng.randrange(65536), rng.randrange(65536)
            l4 = TCP(sport=sport, dport=dport) if proto == 6 else UDP(sport=sport, dport=dport)
            packet = raw(IP(src="10.0.0.1", dst=".".join(map(str, dst))) / l4)
            frame = bpf_harness.ethernet(
                bpf_harness.ROUTER_MAC, bpf_harness.PORT_MAC, 0x0800, packet
            )
            out = node.run(frame)
            assert out.verdict == TC_ACT_REDIRECT, out
            slot = int.from_bytes(out.packet[14 + 24 + 6 : 14 + 24 + 8], "big")
            want = flow_hash(Flow(src, dst, proto, sport, dport), fields)
            assert slot == want % layout.MAGLEV_STRIDE % gateways, (fields, want)


def test_a_public_ip_holders_flows_go_there_and_as_any_while_it_is_dead(
    world: Lab, node: Loaded
) -> None:
    """The gateway holding a's public IP keeps its NAT state: every flow of a's goes by it,
    unpinned, as the core's `held_by` sends it (byte for byte); while it is dead a's flows are
    hashed (and pinned) as any node's."""
    b = both(world, node)
    with world.store.write(ADMIN, NOW) as tx:
        public_ips.add(tx, "z/znet/a", "egress", "30.0.100.50")
    b.edge.snapshot_all()
    b.sync()
    [(_, gateway_id)] = world.r.tables.public_owners.items()
    [pool] = world.r.tables.edge_pools.values()
    prefix = pool.gateways[gateway_id].prefix
    holder = next(name for name, value in b.edge.prefixes.items() if value == prefix)
    for dst, sport, proto, size in flows(60):
        out, gateway = b.run(b.frame(dst, sport, proto, size))
        assert out.verdict == TC_ACT_REDIRECT and gateway == holder, (out.slow, gateway)
    assert not node.maps["onm_pins"].entries()  # the holder's flows are not pinned
    survivor = ({"gw1", "gw2"} - {holder}).pop()
    now = NOW
    b.probe_round(now, {"gw1", "gw2"})
    for _ in range(int(DEAD_AFTER) + 2):
        now += dt.timedelta(seconds=1)
        b.probe_round(now, {survivor})
    for dst, sport, proto, size in flows(30, seed=3):
        out, gateway = b.run(b.frame(dst, sport, proto, size), now)
        assert out.verdict == TC_ACT_REDIRECT and gateway == survivor, (out.slow, gateway)
    assert len(node.maps["onm_pins"].entries()) == 30


def _pin(node: Loaded, frame: bytes, value: layout.PinValue) -> None:
    packet = frame[14:]
    flow = Flow(packet[12:16], packet[16:20], packet[9], *struct.unpack("!HH", packet[20:24]))
    node.maps["onm_pins"].update(pin_key(0, flow), value)


def test_a_pin_holds_only_while_fresh_and_of_its_gateway_and_generation(
    world: Lab, node: Loaded
) -> None:
    """A pin written by hand to the gateway the table does not choose: taken while its
    serial, the pool's generation and the idle timeout say it holds; else the table's."""
    b = both(world, node)
    frame = b.frame("30.0.7.7", 40001, "udp")
    table_choice, gateway = b.run(frame)
    assert table_choice.verdict == TC_ACT_REDIRECT
    assert b.written is not None
    [pool] = b.lab.r.tables.edge_pools.values()
    chosen_prefix = table_choice.packet[14 + 24 : 14 + 32]
    [(other, (slot, serial))] = [
        (g, s)
        for g, s in b.written.gateway_slots.items()
        if pool.gateways[g].prefix_bytes != chosen_prefix
    ]
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)  # bpf_ktime_get_ns' clock
    idle = layout.IDLE_NS["UDP"]
    cases = [
        (layout.PinValue(gateway=slot, serial=serial, last_seen=now), True),
        (layout.PinValue(gateway=slot, serial=serial, last_seen=now - idle - 10**9), False),
        (layout.PinValue(gateway=slot, serial=serial + 99, last_seen=now), False),
        (layout.PinValue(gateway=slot, serial=serial, generation=1, last_seen=now), False),
    ]
    for value, holds in cases:
        _pin(node, frame, value)
        out = node.run(frame)
        assert out.verdict == TC_ACT_REDIRECT
        moved = out.packet[14 + 24 : 14 + 32] != chosen_prefix
        assert moved is holds, (value.serial, value.generation, value.last_seen, gateway, other)


def test_a_draining_gateway_keeps_its_flows_and_takes_no_new_ones(world: Lab, node: Loaded) -> None:
    b = both(world, node)
    before = {}
    for dst, sport, proto, _ in flows(100):
        before[(dst, sport, proto)] = b.run(b.frame(dst, sport, proto))[1]
    with world.store.write(ADMIN, NOW) as tx:
        edge_pools.update_gateway(tx, "z/znet/egress", "e1", state="draining")
    b.edge.snapshot_all()
    b.sync()
    for (dst, sport, proto), gateway in before.items():
        out, now = b.run(b.frame(dst, sport, proto))
        assert out.verdict == TC_ACT_REDIRECT and now == gateway
    new = {b.run(b.frame(dst, sport, proto))[1] for dst, sport, proto, _ in flows(100, seed=3)}
    assert new == {"gw2"}


def _anycast_sent(node: Loaded, b: Both) -> int:
    assert b.written is not None
    [slot] = b.written.pool_slots.values()
    return sum(packets for packets, _, _ in node.maps.edge_sent(slot, "onm_anycast_sent"))


def test_an_anycast_pools_flows_leave_steered_for_its_64_as_the_core(
    world: Lab, node: Loaded
) -> None:
    """Anycast mode (seed 1: the router's ECMP chooses, steered by the source): every flow
    goes to `anycast /64 | vni | external IPv4` from a's address with the flow's slot, byte for
    byte the core's, unpinned, counted per pool as the core's `anycast_sent`; the slots spread
    (the top 6 bits of the 5-tuple's hash)."""
    b = both(world, node, {"mode": "anycast", "hash": "src,dst,proto,sport,dport"})
    [pool] = world.r.tables.edge_pools.values()
    own = world.r.tables.ports[b.a.interface].substrate
    slots: Counter[int] = Counter()
    for dst, sport, proto, size in flows(200):
        out, where = b.run(b.frame(dst, sport, proto, size))
        assert out.verdict == TC_ACT_REDIRECT and where == ANYCAST, (out.slow, where)
        source = out.packet[14 + 8 : 14 + 24]
        assert unsteered(source) == own
        slots[source[8] >> 2] += 1
    assert len(slots) > 40, slots  # 200 flows over 64 slots
    assert not node.maps["onm_pins"].entries()  # the router chose: nothing to pin
    assert _anycast_sent(node, b) == world.r.egress.anycast_sent[pool.id].packets == 200


def test_an_anycast_pool_goes_direct_while_a_gateway_is_down_and_such_flows_stay(
    world: Lab, node: Loaded
) -> None:
    """While a gateway is dead (which the router cannot know) new flows go in direct mode to
    the survivors and are pinned, as the core's; back alive, the pinned flows stay direct
    (their gateway holds their NAT state) and new ones take the anycast /64 again."""
    b = both(world, node, {"mode": "anycast"})
    now = NOW
    b.probe_round(now, {"gw1", "gw2"})
    for _ in range(int(DEAD_AFTER) + 2):
        now += dt.timedelta(seconds=1)
        b.probe_round(now, {"gw2"})
    direct = flows(40, seed=7)
    for dst, sport, proto, size in direct:
        out, where = b.run(b.frame(dst, sport, proto, size), now)
        assert out.verdict == TC_ACT_REDIRECT and where == "gw2", (out.slow, where)
    now += dt.timedelta(seconds=1)
    b.probe_round(now, {"gw1", "gw2"})
    [pool] = world.r.tables.edge_pools.values()
    assert all(world.r.egress.probes.alive(g) for g in pool.gateways)
    for dst, sport, proto, _ in direct:
        out, where = b.run(b.frame(dst, sport, proto), now)
        assert out.verdict == TC_ACT_REDIRECT and where == "gw2", (out.slow, where)
    for dst, sport, proto, size in flows(40, seed=8):
        out, where = b.run(b.frame(dst, sport, proto, size), now)
        assert out.verdict == TC_ACT_REDIRECT and where == ANYCAST, (out.slow, where)
