"""The eBPF adapter's edge side against the real node_ingress (issue #11): `EdgeSync` writing
the edge maps from the core's tables and probes, and `KernelPins` keeping the kernel's pins and
the core's in agreement and reading the kernel's figures back.

The agent core's world with edge pool egress (`support.edge_world`: gateways e1 on gw1, e2 on
gw2, route 0.0.0.0/0); node a's port and network are written as the adapter writes them, the
edge maps by `EdgeSync`, and frames run through the program with BPF_PROG_TEST_RUN and through
r's core (whose `Egress.mirror` is the `KernelPins` under test).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterator

import pytest
from scapy.all import IP, UDP, Ether, Raw, raw

from onm.addressing import agent_address
from onm.agent.actions import ToSubstrate
from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.edge_kernel import KernelPins
from onm.agent.datapath.ebpf.edge_maps import pin_key, read_edge, route_key
from onm.agent.datapath.ebpf.edge_sync import EdgeSync
from onm.agent.datapath.ebpf.libbpf import TC_ACT_REDIRECT
from onm.agent.datapath.ebpf.maps import port_value
from onm.agent.probes import DEAD_AFTER
from onm.agent.tables import router_mac
from onm.manager import edge_pools, hosts
from onm.model.ids import GatewayId
from onm.model.principal import ADMIN
from onm.packet.ethernet import format_mac
from onm.selection.flow import Flow
from support.agent_world import NOW, Lab, only
from support.agent_world import lab as world
from support.bpf_harness import LOOPBACK, SUBSTRATE_IFINDEX, Loaded
from support.edge_world import EdgeWorld, edge_world

__all__ = ["world"]

FIVE_TUPLE = {"hash": "src,dst,proto,sport,dport"}
"""One pair's flows spread over the gateways."""


@pytest.fixture(name="node")
def node_fixture() -> Iterator[Loaded]:
    loaded = Loaded("node_ingress", "onm_node_ingress")
    yield loaded
    loaded.close()


class Agent:
    """Node a of r's world with the adapter's edge side over node_ingress's maps."""

    def __init__(self, edge: EdgeWorld, node: Loaded) -> None:
        self.edge, self.lab, self.node = edge, edge.lab, node
        self.a = self.lab.nodes["a"]
        self.sync = EdgeSync(node.maps)
        self.pins = KernelPins(node.maps, lambda: self.sync.held)
        self.sync.fresh = self.pins.zero
        self.lab.r.egress.mirror = self.pins
        tables = self.lab.r.tables
        port = tables.ports[self.a.interface]
        node.maps.set_config(SUBSTRATE_IFINDEX)
        node.put("onm_ports", layout.PortKey(LOOPBACK), port_value(port, port.network.vni))

    def synced(self) -> int:
        return self.sync.sync(self.lab.r.tables, self.lab.r.egress.probes)

    def frame(self, dst: str, sport: int, size: int = 0) -> bytes:
        return raw(
            Ether(src=self.a.mac, dst=format_mac(router_mac(self.edge.vni)))
            / IP(src=str(self.a.ip), dst=dst)
            / UDP(sport=sport, dport=53)
            / Raw(bytes(size))
        )

    def kernel(self, frame: bytes) -> str:
        """The gateway (host name) node_ingress sends `frame` to."""
        out = self.node.run(frame)
        assert out.verdict == TC_ACT_REDIRECT, out
        return self._host(out.packet[14 + 24 : 14 + 32])

    def core(self, frame: bytes, now: dt.datetime = NOW) -> str:
        """The gateway (host name) r's core sends `frame` to."""
        [sent] = only(self.lab.r.node_frame(self.a.interface, frame, now), ToSubstrate)
        return self._host(sent.packet[24:32])

    def _host(self, prefix: bytes) -> str:
        value = int.from_bytes(prefix, "big")
        return next(n for n, v in self.edge.prefixes.items() if v == value)

    def gateway(self, host: str) -> GatewayId:
        [pool] = self.lab.r.tables.edge_pools.values()
        value = self.edge.prefixes[host]
        return next(g.id for g in pool.gateways.values() if g.prefix_bytes == _packed(value))


def _packed(prefix: int) -> bytes:
    return prefix.to_bytes(8, "big")


def flow_of_frame(frame: bytes) -> Flow:
    packet = frame[14:]
    return Flow(packet[12:16], packet[16:20], packet[9], *struct.unpack("!HH", packet[20:24]))


def test_the_maps_are_written_once_for_the_same_tables_and_again_when_a_gateway_dies(
    world: Lab, node: Loaded
) -> None:
    agent = Agent(edge_world(world, FIVE_TUPLE), node)
    assert agent.synced() > 16381  # the pool's whole Maglev table, its gateways, routes
    assert agent.synced() == 0  # the same tables, nobody dead: nothing computed or written
    before = {port: agent.kernel(agent.frame("30.0.9.9", port)) for port in range(41000, 41100)}
    now = NOW
    for _ in range(int(DEAD_AFTER) + 2):  # gw1 silent, gw2 answering
        now += dt.timedelta(seconds=1)
        for probe in (a for a in agent.lab.r.on_timer(now) if isinstance(a, ToSubstrate)):
            if probe.packet[24:40] == agent_address(agent.edge.prefixes["gw2"]):
                for answer in only(
                    agent.edge.gw["gw2"].substrate_packet(probe.packet, now), ToSubstrate
                ):
                    agent.lab.r.substrate_packet(answer.packet, now)
    assert not agent.lab.r.egress.probes.alive(agent.gateway("gw1"))
    assert 0 < agent.synced() < 16381 + 10  # the table's changed entries and e1's flags
    after = {port: agent.kernel(agent.frame("30.0.9.9", port)) for port in before}
    assert {p for p in before if before[p] != after[p]} == {p for p in before if before[p] == "gw1"}
    assert set(after.values()) == {"gw2"} and set(before.values()) == {"gw1", "gw2"}


def test_the_kernels_pins_and_counts_are_the_agents_figures(world: Lab, node: Loaded) -> None:
    agent = Agent(edge_world(world, FIVE_TUPLE), node)
    agent.synced()
    egress = agent.lab.r.egress
    sent: dict[str, list[int]] = {}
    for port in range(42000, 42040):
        frame = agent.frame("30.0.4.4", port, 100)
        for _ in range(3):
            host = agent.kernel(frame)
        counts = sent.setdefault(host, [0, 0, 0])
        counts[0] += 3
        counts[1] += 3 * (len(frame) - 14)
        counts[2] += 1
    pinned, kernel_sent = agent.pins.refresh(egress.flows)
    assert pinned == {agent.gateway(h): c[2] for h, c in sent.items()}
    assert {g: (c.packets, c.bytes, c.flows) for g, c in kernel_sent.items()} == {
        agent.gateway(h): tuple(c) for h, c in sent.items()
    }
    egress.kernel_pinned, egress.kernel_sent = pinned, kernel_sent
    [report] = [a for a in agent.lab.r.on_timer(NOW) if type(a).__name__ == "ReportGateways"]
    assert {g.gateway_id: g.pinned for g in report.gateways if g.pinned} == pinned
    assert len(pinned) == 2
    # A flow the core meets too (a frame the kernel passed up) keeps the kernel's gateway and
    # is counted once.
    frame = agent.frame("30.0.4.4", 42000, 100)
    kernel = agent.kernel(frame)
    assert agent.core(frame) == kernel and egress.flows.selections == 0
    again, _ = agent.pins.refresh(egress.flows)
    assert sum(again.values()) == sum(pinned.values()) - 1


def test_a_flow_the_core_chose_first_is_pinned_in_the_kernel_to_that_gateway(
    world: Lab, node: Loaded
) -> None:
    """The core's choice before a gateway joined stays the flow's in the kernel after, though
    the kernel's table would now send some of those flows to the new gateway."""
    agent = Agent(edge_world(world, FIVE_TUPLE), node)
    agent.synced()
    ports = range(43000, 43200)
    chosen = {p: agent.core(agent.frame("30.0.5.5", p)) for p in ports}
    with world.store.write(ADMIN, NOW) as tx:
        host, _ = hosts.create(tx, "gw3", "fd00:0:101:903::/64", role="edge", external="internet")
        agent.edge.prefixes["gw3"] = host.prefix.value
        edge_pools.add_gateway(tx, "z/znet/egress", "e3", "gw3", "30.0.100.3")
    agent.edge.snapshot_all()
    agent.synced()
    assert {p: agent.kernel(agent.frame("30.0.5.5", p)) for p in ports} == chosen
    fresh = {agent.kernel(agent.frame("30.0.5.6", p)) for p in ports}
    assert "gw3" in fresh  # new flows do take the new table


def test_a_rebalance_drops_the_kernels_pins_and_a_reused_slot_counts_afresh(
    world: Lab, node: Loaded
) -> None:
    agent = Agent(edge_world(world, FIVE_TUPLE), node)
    agent.synced()
    for port in range(44000, 44030):
        agent.kernel(agent.frame("30.0.6.6", port))
    [pool] = agent.lab.r.tables.edge_pools.values()
    assert agent.pins.rebalance([pool.id]) == 30
    assert agent.pins.refresh(agent.lab.r.egress.flows)[0] == {}
    assert node.maps["onm_pins"].keys() == []
    held = agent.sync.held
    assert held is not None
    slot = held.gateway_slots[agent.gateway("gw1")][0]
    assert any(p for p, _, _ in node.maps.edge_sent(slot))
    agent.pins.zero([slot])
    assert node.maps.edge_sent(slot) == [(0, 0, 0)] * len(node.maps.edge_sent(slot))


def test_the_pins_are_read_in_batches_whole(node: Loaded) -> None:
    """More pins than one batch holds: `items` (batched) finds every one `keys` (a walk)
    does, each with its value."""
    pins = node.maps["onm_pins"]
    written = {}
    for i in range(5000):
        flow = Flow(bytes([10, 0, 0, 2]), i.to_bytes(4, "big"), 17, 1024 + i, 53)
        key = pin_key(0, flow)
        value = layout.PinValue(gateway=i % 7, serial=i, last_seen=i)
        pins.update(key, value)
        written[bytes(key)] = bytes(value)
    items = pins.items(batch=4096)
    assert len(items) == 5000 and dict(items) == written
    assert sorted(pins.keys()) == sorted(written)


def test_a_restarted_agent_adopts_the_edge_maps_its_pins_staying_valid(
    world: Lab, node: Loaded
) -> None:
    """A new `EdgeSync` over the maps a stopped agent left (pinned, issue #11 static
    stability) keeps every pool's and gateway's slot and serial, so each kernel pin still
    holds its flow to its gateway; what the tables no longer have is removed."""
    agent = Agent(edge_world(world, FIVE_TUPLE), node)
    agent.synced()
    ports = range(45000, 45040)
    chosen = {p: agent.kernel(agent.frame("30.0.7.7", p)) for p in ports}
    first = agent.sync.held
    assert first is not None
    stale = route_key(agent.edge.vni, 8, bytes([40, 0, 0, 0]))
    node.maps["onm_routes"].update(stale, layout.RouteValue(0))  # the old agent's, not ours

    restarted = EdgeSync(node.maps, adopted=read_edge(node.maps))
    written = restarted.sync(agent.lab.r.tables, agent.lab.r.egress.probes)
    held = restarted.held
    assert held is not None
    assert held.pool_slots == first.pool_slots and held.gateway_slots == first.gateway_slots
    assert held.next_serial == first.next_serial
    assert written == 16381 + 1  # the Maglev table, rewritten as it was; the stale route gone
    routes = node.maps["onm_routes"].keys()  # keys: a lookup would find 0.0.0.0/0
    assert bytes(stale) not in routes
    pins = KernelPins(node.maps, lambda: restarted.held)
    pinned, _ = pins.refresh(agent.lab.r.egress.flows)
    assert sum(pinned.values()) == len(ports)  # every pin valid for the adopted slots
    assert {p: agent.kernel(agent.frame("30.0.7.7", p)) for p in ports} == chosen
