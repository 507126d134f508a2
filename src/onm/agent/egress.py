"""Node -> external network: the route, the gateway chosen before the packet leaves the host,
and the packet re-headered straight to that gateway (seed 1, FIG. 2C; DESIGN.md sections 2, 5).

Theory of operation:
- A node sends to an address outside its network through its router MAC; the network's
  longest matching route names an edge pool. No route: dropped (`NO_ROUTE`).
- The pool's gateway for the flow comes from `onm.agent.flows` (pinned flows; a Maglev table
  over the active gateways that `onm.agent.probes` finds alive), or, with `choice: random`,
  a random pick among the same, pinned the same way, or with `choice: least-loaded` the least
  loaded of the same (below); a routed pool's heavy pairs are spread
  (`onm.agent.splitting`). No live gateway: the node gets ICMP
  host unreachable at once (`EDGE_NO_GATEWAY`), as a fail-closed pool does.
- The packet crosses the substrate as any other, by its network's encoding, to the gateway's
  /64 with the network id and the external destination embedded (DESIGN.md section 2); the
  source is the node's own substrate address, which the gateway verifies.
- A node with a public IP on the pool (issue #10) sends every flow through the gateway that
  holds the address (`Tables.public_owners`), not the hash's choice: that gateway keeps the
  1:1 NAT state, so a reply to an inbound connection leaves where the connection came in,
  and new connections leave from the public IP. While that gateway is dead the node's flows
  are hashed as any other's (out through the pool's SNAT addresses; inbound waits for the
  gateway, or for the manager to move the address).
- `choice: least-loaded`: a new flow takes the live active gateway with the fewest flows
  pinned now over all senders: `others` (what the manager answered this agent's last gateway
  report: the other senders' pins) plus this agent's own (`onm.agent.flows`); pinned flows
  stay, as with the hash. No snapshot changes with load.
- What each gateway is sent is counted per gateway (packets, bytes, new flows), and reported
  to the manager with each gateway's liveness (`onm.agent.gateway_reports`).
- A pool whose rebalance generation changes (an operator's `onm edge-pool rebalance`) has its
  pins dropped once, when the snapshot that carries it is applied: every flow then takes the
  table's choice. The first generation seen of a pool is only remembered.
- Anycast mode (seed 1: a router with ECMP chooses, "spoofing a specified source network
  address"): the packet goes to the pool's shared /64 instead, from the node's address steered
  to the flow's slot (`steering_slot` over the pool's hash fields), and the substrate's
  multipath route picks the gateway; the agent picks none, and counts per pool
  (`anycast_sent`). While any gateway of the pool is dead or draining, which the router cannot
  know, new flows go in direct mode to the survivors as above; a flow pinned that way stays
  direct while its gateway lives (it holds that gateway's NAT state).
Time passes only when told (`now`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from onm.addressing import embed_ipv4, steer
from onm.agent.actions import Action, GatewayReport
from onm.agent.emission import CROSSING, Payload, emit, host_unreachable
from onm.agent.flows import FlowTable, PoolRoute
from onm.agent.gateway_reports import Reporter, figures
from onm.agent.probes import Change, Probes
from onm.agent.splitting import SPREAD, PairMeter
from onm.agent.state import CoreState
from onm.agent.superframes import to_substrate
from onm.agent.tables import EdgeEntry, GatewayEntry, Port, Tables
from onm.model.edge_pool import Choice, Nat
from onm.model.ids import EdgePoolId, GatewayId, NodeId
from onm.packet.drop import DropReason
from onm.packet.icmpv6 import IcmpV6Message
from onm.packet.mapper import PairMapper
from onm.packet.offload import TcpGso
from onm.selection.flow import Flow, flow_of, steering_slot


def held_by(
    pool: EdgeEntry,
    node_id: NodeId,
    owners: Mapping[tuple[NodeId, EdgePoolId], GatewayId],
    alive: Callable[[GatewayId], bool],
) -> GatewayEntry | None:
    """The gateway holding `node_id`'s public IP on `pool`, while it is alive; None: the
    node's flow takes the pool's usual choice."""
    owner = owners.get((node_id, pool.id))
    gateway = None if owner is None else pool.gateways.get(owner)
    return gateway if gateway is not None and alive(gateway.id) else None


@dataclass(slots=True)
class GatewayCounts:
    """What this host's nodes sent one gateway."""

    packets: int = 0
    bytes: int = 0
    flows: int = 0


class PinMirror(Protocol):
    """Another table of the same flows' gateways (the kernel's `onm_pins` on the eBPF
    datapath), kept in agreement with `FlowTable`: a flow takes one gateway whichever path its
    packets take."""

    def get(self, pool_id: EdgePoolId, flow: Flow) -> GatewayId | None:
        """The live gateway the other table pins `flow` to, if any."""
        ...

    def put(self, pool_id: EdgePoolId, flow: Flow, gateway_id: GatewayId) -> None:
        """`flow` is pinned to `gateway_id` here (new, or moved): the other table follows."""
        ...


@dataclass(slots=True)
class Egress:
    state: CoreState
    flows: FlowTable = field(default_factory=FlowTable)
    pairs: PairMeter = field(default_factory=PairMeter)
    probes: Probes = field(default_factory=Probes)
    sent: defaultdict[GatewayId, GatewayCounts] = field(
        default_factory=lambda: defaultdict(GatewayCounts)
    )
    """What this host's nodes sent each gateway (made at the first use)."""
    changes: Counter[str] = field(default_factory=Counter)
    """`down` and `up`: gateways this agent found dead, and alive again."""
    rng: random.Random = field(default_factory=random.Random)
    reporter: Reporter = field(default_factory=Reporter)
    generations: dict[EdgePoolId, int] = field(default_factory=dict)
    """Pool -> the rebalance generation last seen."""
    anycast_sent: defaultdict[EdgePoolId, GatewayCounts] = field(
        default_factory=lambda: defaultdict(GatewayCounts)
    )
    """What this host's nodes sent each anycast pool's shared /64 (the router chose where)."""
    others: dict[GatewayId, int] = field(default_factory=dict)
    """Gateway -> flows the other senders pin to it, as the manager last said (least-loaded
    pools only)."""
    mirror: PinMirror | None = None
    """Set by a datapath that pins flows elsewhere too (eBPF): asked before a flow this table
    does not know is chosen, told of every choice made here."""
    kernel_pinned: Mapping[str, int] = field(default_factory=dict)
    """Gateway -> flows pinned elsewhere (the kernel) that this table does not hold, as the
    datapath last read them; added to `pinned`."""
    kernel_sent: Mapping[GatewayId, GatewayCounts] = field(default_factory=dict)
    """What the kernel sent each gateway (since the agent started); added to `sent`."""
    kernel_anycast_sent: Mapping[EdgePoolId, GatewayCounts] = field(default_factory=dict)
    """What the kernel sent each anycast pool's shared /64; added to `anycast_sent`."""
    _routes: dict[EdgePoolId, PoolRoute] = field(default_factory=dict)

    def update(self, tables: Tables, own_prefix: int, now: dt.datetime) -> None:
        """A snapshot's tables are in force: probe their gateways, rebuild the selection, and
        drop the pins of pools rebalanced since the last snapshot."""
        self.probes.update(tables, own_prefix, now)
        self._routes.clear()
        for gone in self.sent.keys() - {g for p in tables.edge_pools.values() for g in p.gateways}:
            del self.sent[gone]
        generations = {pool.id: pool.rebalance for pool in tables.edge_pools.values()}
        for pool_id, generation in generations.items():
            if self.generations.get(pool_id, generation) != generation:
                self.flows.rebalance(pool_id)
        self.generations = generations
        for pool_id in self.anycast_sent.keys() - tables.edge_pools.keys():
            del self.anycast_sent[pool_id]

    def _route(self, pool: EdgeEntry) -> PoolRoute:
        route = self._routes.get(pool.id)
        if route is None:
            gateways = pool.gateways.values()
            route = PoolRoute.of(
                pool.id,
                pool.fields,
                (g.id for g in gateways if g.active),
                self.probes.alive_of(gateways),
            )
            self._routes[pool.id] = route
        return route

    def gateway_for(
        self, pool: EdgeEntry, packet: bytes, size: int, now: dt.datetime
    ) -> GatewayEntry | None:
        """The gateway this datagram's flow goes through (None: none alive); `size` bytes of
        it count toward its pair's rate when the pool splits."""
        route = self._route(pool)
        flow = flow_of(packet)
        pick = None
        if pool.choice is Choice.RANDOM and route.table:
            pick = self.rng.getrandbits(32)
        spread = None
        if pool.split_above is not None and pool.nat is Nat.NONE:
            pair = (pool.id, flow.src, flow.dst)
            if self.pairs.add(pair, size, pool.split_above, now):
                spread, pick = SPREAD, None
        loads = self.others if pool.choice is Choice.LEAST_LOADED else None
        flows = self.flows
        mirror = self.mirror
        if mirror is not None and (pool.id, flow) not in flows.pins:
            known = mirror.get(pool.id, flow)
            if known is not None and known in route.alive:
                flows.adopt(pool.id, flow, known, now)
        pins, was = len(flows.pins), flows.pins.get((pool.id, flow))
        before = None if was is None else was.gateway
        chosen = flows.gateway_for(route, flow, now, pick, spread, loads)
        if chosen is None:
            return None
        gateway = pool.gateways[GatewayId(chosen)]
        if len(flows.pins) != pins:
            self.sent[gateway.id].flows += 1
        if mirror is not None and chosen != before:
            mirror.put(pool.id, flow, gateway.id)
        return gateway

    def loads(self, others: Mapping[GatewayId, int]) -> None:
        """The manager's answer to a gateway report: the flows other senders pin to each
        gateway of the least-loaded pools this agent sends through (replaces the last)."""
        self.others = dict(others)

    def packet(
        self,
        port: Port,
        packet: bytes,
        source_substrate: bytes,
        now: dt.datetime,
        gso: TcpGso | None,
        payload: Payload | None,
    ) -> list[Action]:
        """A node's datagram to an address outside its network (see the module's rules)."""
        state = self.state
        network = port.network
        target = packet[16:20]
        pool = self.pool_for(network.vni, target)
        if pool is None:
            state.counters.drop(DropReason.NO_ROUTE)
            return []
        size = len(packet) + (0 if payload is None else len(payload))
        held = held_by(pool, port.node_id, state.tables.public_owners, self.probes.alive)
        if held is None and pool.anycast is not None:  # a holder keeps its own NAT state
            sent = self.anycast(port, pool, packet, source_substrate, gso, payload)
            if sent is not None:
                return sent
        gateway = held or self.gateway_for(pool, packet, size, now)
        if gateway is None:
            refused = host_unreachable(packet, network.siit, DropReason.EDGE_NO_GATEWAY)
            return emit(state.counters, refused, port, False)
        counts = self.sent[gateway.id]
        counts.packets += 1
        counts.bytes += size
        destination = embed_ipv4(gateway.prefix, network.vni, target)
        mapper = PairMapper(packet[12:16], source_substrate, target, destination)
        if gso is not None:
            return to_substrate(state, packet, payload, port, mapper, gso)
        crossed = CROSSING[network.encoding](packet, mapper, network.siit)
        return emit(state.counters, crossed, port, toward_node=False)

    def anycast(
        self,
        port: Port,
        pool: EdgeEntry,
        packet: bytes,
        source_substrate: bytes,
        gso: TcpGso | None,
        payload: Payload | None,
    ) -> list[Action] | None:
        """An anycast pool's datagram to its shared /64 from the flow's steered source; None
        when it goes in direct mode instead (a gateway dead or draining, or the flow pinned
        to a gateway while one was)."""
        assert pool.anycast is not None
        gateways = pool.gateways.values()
        alive = self.probes.alive
        if not gateways or not all(g.active and alive(g.id) for g in gateways):
            return None
        flow = flow_of(packet)
        pin = self.flows.pins.get((pool.id, flow))
        if pin is not None and alive(GatewayId(pin.gateway)):
            return None
        counts = self.anycast_sent[pool.id]
        counts.packets += 1
        counts.bytes += len(packet) + (0 if payload is None else len(payload))
        network = port.network
        target = packet[16:20]
        source = steer(source_substrate, steering_slot(flow, pool.fields))
        destination = embed_ipv4(pool.anycast, network.vni, target)
        mapper = PairMapper(packet[12:16], source, target, destination)
        if gso is not None:
            return to_substrate(self.state, packet, payload, port, mapper, gso)
        crossed = CROSSING[network.encoding](packet, mapper, network.siit)
        return emit(self.state.counters, crossed, port, toward_node=False)

    def pool_for(self, vni: int, target: bytes) -> EdgeEntry | None:
        tables = self.state.tables
        for route in tables.routes.get(vni, ()):
            if route.covers(target):
                return tables.edge_pools.get(route.pool_id)
        return None

    # --- liveness ----------------------------------------------------------------------------

    def next_timer(self) -> dt.datetime | None:
        reporting = self.reporter.next_timer(self._reportable())
        times = [t for t in (self.probes.next_timer(), self.flows.next_timer(), reporting) if t]
        return min(times, default=None)

    def on_timer(self, now: dt.datetime) -> list[Action]:
        probes, changes = self.probes.on_timer(now)
        expiry = self.flows.next_timer()
        if expiry is not None and expiry <= now:
            self.flows.expire(now)
        return [*probes, *self._changed(changes, now)]

    def on_answer(self, source: bytes, message: IcmpV6Message, now: dt.datetime) -> list[Action]:
        return self._changed(self.probes.on_answer(source, message, now), now)

    def _changed(self, changes: list[Change], now: dt.datetime) -> list[Action]:
        for change in changes:
            self._routes.pop(change.pool_id, None)
            self.changes["up" if change.alive else "down"] += 1
        self.reporter.changed(GatewayReport(c.gateway_id, c.pool_id, c.alive) for c in changes)
        report = self.reporter.report(now, self.figures())
        return [] if report is None else [report]

    # --- reports -----------------------------------------------------------------------------

    def _probed(self, gateway_id: GatewayId) -> bool | None:
        target = self.probes.targets.get(gateway_id)
        return None if target is None else target.alive

    def pinned_now(self) -> dict[str, int]:
        """Gateway -> flows pinned to it now, this table's and the kernel's others."""
        total = dict(self.flows.pinned)
        for gateway, count in dict(self.kernel_pinned).items():
            total[gateway] = total.get(gateway, 0) + count
        return total

    def sent_now(self) -> dict[GatewayId, GatewayCounts]:
        """What this host's nodes sent each gateway, by the core and by the kernel."""
        return _summed(self.sent, self.kernel_sent)

    def anycast_sent_now(self) -> dict[EdgePoolId, GatewayCounts]:
        """What this host's nodes sent each anycast pool's shared /64, core and kernel."""
        return _summed(self.anycast_sent, self.kernel_anycast_sent)

    def figures(self) -> tuple[GatewayReport, ...]:
        """Every gateway this agent probes or serves, as it sees it now, with its counts."""
        tables = self.state.tables
        serving = {vni: duty.gateway.id for vni, duty in tables.duties.items()}
        pools = tables.edge_pools.values()
        return figures(pools, self._probed, self.pinned_now(), self.sent_now(), serving)

    def _reportable(self) -> bool:
        return bool(self.probes.targets) or any(
            g.local for p in self.state.tables.edge_pools.values() for g in p.gateways.values()
        )


K = TypeVar("K")


def _summed(
    core: Mapping[K, GatewayCounts], kernel: Mapping[K, GatewayCounts]
) -> dict[K, GatewayCounts]:
    """The core's counts plus the kernel's, copied (each dict whole first: the loop changes
    them while metrics read)."""
    total = {k: GatewayCounts(c.packets, c.bytes, c.flows) for k, c in dict(core).items()}
    for key, more in dict(kernel).items():
        mine = total.setdefault(key, GatewayCounts())
        mine.packets += more.packets
        mine.bytes += more.bytes
        mine.flows += more.flows
    return total
