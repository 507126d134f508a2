"""Prometheus metrics of one agent, served on a local port (`--metrics HOST:PORT`).

The datapath loop owns the counters; it publishes a copy every second (`Published`), and the
collector reads only that copy, so the HTTP thread never iterates what the loop is changing.
On an edge host the gateway's firewall counters live in the kernel: `firewall` reads them when
a scrape asks (`onm_agent_gateway_rule_packets_total{network, rule}` per rule of an edge pool,
`onm_agent_gateway_default_packets_total{network, verdict}` per default verdict and drop).


Edge pools (issue #10) add `EdgePublished`: per pool and gateway (by name) what this host's
nodes sent (`onm_agent_edge_sent_packets_total`, `..._sent_bytes_total`, `..._new_flows_total`),
the flows pinned now (`onm_agent_edge_pinned_flows`) and the gateway's liveness as this agent
sees it (`onm_agent_edge_gateway_up`); in anycast mode what they sent each pool's shared /64
(`onm_agent_edge_anycast_sent_packets_total{pool}`, `..._bytes_total`); the flow table's
choices, re-hashes, evictions, expiries and rebalances; gateways found dead and back. On an
edge host: each served network's packets and bytes out to the external network and in from
it, and the namespace's conntrack counters
(`onm.agent.io.conntrack`: `insert_failed` is SNAT port exhaustion).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from onm.agent.counters import DIRECTIONS, Counters, Direction, Event
from onm.agent.datapath.ebpf.layout import SlowPath
from onm.agent.egress import Egress, GatewayCounts
from onm.agent.gateway import TenantCounts
from onm.agent.io.conntrack import ConntrackStats
from onm.model.edge_pool import Choice
from onm.netlink.gateway_plan import Counter
from onm.packet.drop import DropReason

# Events exported as their own counters (`onm_agent_<name>_total`).
NAMED_EVENTS: dict[Event, str] = {
    Event.ARP_ANSWERS: "ARP requests answered for nodes",
    Event.CACHE_HITS: "ARP requests answered from the resolution cache",
    Event.CACHE_MISSES: "lookups that had to ask the manager",
    Event.PORTS_LOST: "node ports closed because their socket failed or their interface vanished",
    Event.POOL_FAILOVERS: "requesters moved to another pool member as health changed (no ARP)",
    Event.POOL_ROTATIONS: "requesters of a rotating ranked pool moved on to their next member",
    Event.CLAIMS_REPORTED: "addresses nodes used that are not their own, reported as claims",
}
# Events exported as `onm_agent_resolutions_total{result=...}`.
RESOLUTION_RESULTS: dict[Event, str] = {
    Event.RESOLUTIONS: "answered",
    Event.RESOLUTIONS_REFUSED: "refused",
    Event.RESOLUTIONS_FAILED: "failed",
}
OTHER_EVENTS = tuple(e for e in Event if e not in NAMED_EVENTS and e not in RESOLUTION_RESULTS)
"""Every other event, as `onm_agent_events_total{event=...}` (zero until it happens)."""


FLOW_TABLE: dict[str, str] = {
    "selections": "gateways chosen for a flow from a pool's table (a new flow, or a moved one)",
    "rehashed": "flows moved because their gateway died or left (their NAT state lost)",
    "evicted": "pins dropped because the flow table was full (least recently used first)",
    "expired": "pins dropped after their protocol's idle timeout",
    "rebalanced": "pins dropped by an operator's rebalance",
}
"""The flow table's counters, each `onm_agent_edge_<name>_total`."""
CONNTRACK: dict[str, str] = {
    "insert_failed": "new connections whose (translated) tuple clashed: SNAT port exhaustion",
    "drop": "new connections dropped because the conntrack table was full",
    "early_drop": "conntrack entries evicted early to make room",
}
"""An edge host's conntrack counters, each `onm_agent_edge_conntrack_<name>_total`."""


@dataclass(frozen=True, slots=True)
class GatewayFigures:
    pool: str
    gateway: str
    up: bool | None
    """As this agent sees it (None: not probed, not local)."""
    pinned: int
    flows: int
    packets: int
    bytes: int
    others: int | None = None
    """Flows the other senders pin to it, as the manager last said (least-loaded pools)."""


@dataclass
class EdgePublished:
    gateways: list[GatewayFigures] = field(default_factory=list)
    flow_table: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    tenants: dict[int, TenantCounts] = field(default_factory=dict)
    conntrack: ConntrackStats | None = None
    anycast: dict[str, GatewayCounts] = field(default_factory=dict)
    """Pool name -> what this host's nodes sent its shared /64 (anycast mode)."""


def edge_published(
    egress: Egress, tenants: dict[int, TenantCounts], conntrack: ConntrackStats | None
) -> EdgePublished:
    """A copy of the core's edge figures. The loop changes them meanwhile: each dict is copied
    whole first (one C call under the GIL), then read."""
    flows = egress.flows
    pinned, sent, targets = egress.pinned_now(), egress.sent_now(), dict(egress.probes.targets)
    others = dict(egress.others)
    pools = dict(egress.state.tables.edge_pools)
    found = []
    for pool in pools.values():
        for g in pool.gateways.values():
            target = targets.get(g.id)
            up = True if g.local else None if target is None else target.alive
            counts = sent.get(g.id)
            found.append(
                GatewayFigures(
                    pool.name,
                    g.name,
                    up,
                    pinned.get(g.id, 0),
                    0 if counts is None else counts.flows,
                    0 if counts is None else counts.packets,
                    0 if counts is None else counts.bytes,
                    others.get(g.id) if pool.choice is Choice.LEAST_LOADED else None,
                )
            )
    return EdgePublished(
        found,
        {name: getattr(flows, name) for name in FLOW_TABLE},
        dict(egress.changes),
        {
            vni: TenantCounts(c.egress_packets, c.egress_bytes, c.ingress_packets, c.ingress_bytes)
            for vni, c in dict(tenants).items()
        },
        conntrack,
        {
            pools[pool_id].name: counts
            for pool_id, counts in egress.anycast_sent_now().items()
            if pool_id in pools
        },
    )


@dataclass
class Published:
    packets: dict[Direction, int] = field(default_factory=dict)
    bytes: dict[Direction, int] = field(default_factory=dict)
    drops: dict[DropReason, int] = field(default_factory=dict)
    events: dict[Event, int] = field(default_factory=dict)
    ports: int = 0
    applied_revision: int = 0
    manager_connected: bool = False
    edge: EdgePublished = field(default_factory=EdgePublished)


FirewallCounts = Callable[[], Sequence[tuple[Counter, int, int]]]
"""The gateway's named counters with their (packets, bytes)."""


class KernelCounters(Protocol):
    """The eBPF programs' counters, summed over CPUs, read at each scrape."""

    def drops(self) -> Mapping[DropReason, int]: ...

    def slow_paths(self) -> Mapping[SlowPath, int]: ...

    def programs(self) -> Sequence[tuple[str, str, int]]:
        """(program, interface, kernel program id) of each program attached."""
        ...

    def map_entries(self) -> Mapping[str, int]:
        """Entries the agent holds written in each map, by the map's name."""
        ...


class Metrics(Collector):
    def __init__(
        self,
        firewall: FirewallCounts | None = None,
        kernel: KernelCounters | None = None,
        datapath: str = "userspace",
    ) -> None:
        self._lock = threading.Lock()
        self._current = Published()
        self._firewall = firewall
        self._kernel = kernel
        self._datapath = datapath

    def publish(
        self,
        counters: Counters,
        ports: int,
        revision: int,
        connected: bool,
        edge: EdgePublished | None = None,
    ) -> None:
        copy = Published(
            dict(counters.packets),
            dict(counters.bytes),
            dict(counters.drops),
            dict(counters.events),
            ports,
            revision,
            connected,
            edge or EdgePublished(),
        )
        with self._lock:
            self._current = copy

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self._lock:
            p = self._current
        packets = CounterMetricFamily(
            "onm_agent_packets", "Packets by direction", labels=["direction"]
        )
        octets = CounterMetricFamily("onm_agent_bytes", "Bytes by direction", labels=["direction"])
        for direction in DIRECTIONS:
            packets.add_metric([direction], p.packets.get(direction, 0))
            octets.add_metric([direction], p.bytes.get(direction, 0))
        drops = CounterMetricFamily(
            "onm_agent_drops", "Packets dropped by reason", labels=["reason"]
        )
        kernel_drops: Mapping[DropReason, int] = {}
        slow: Mapping[SlowPath, int] = {}
        if self._kernel is not None:
            kernel_drops, slow = self._kernel.drops(), self._kernel.slow_paths()
        for reason in DropReason:
            drops.add_metric([reason.label], p.drops.get(reason, 0) + kernel_drops.get(reason, 0))
        resolutions = CounterMetricFamily(
            "onm_agent_resolutions", "Answers from the manager by result", labels=["result"]
        )
        for event, label in RESOLUTION_RESULTS.items():
            resolutions.add_metric([label], p.events.get(event, 0))
        yield from (packets, octets, drops, resolutions)
        info = GaugeMetricFamily(
            "onm_agent_datapath", "1 for the datapath this agent runs", labels=["datapath"]
        )
        info.add_metric([self._datapath], 1)
        yield info
        if self._kernel is not None:
            kernel = CounterMetricFamily(
                "onm_agent_ebpf_drops",
                "Packets the eBPF programs dropped, by reason (included in onm_agent_drops)",
                labels=["reason"],
            )
            for reason in DropReason:
                kernel.add_metric([reason.label], kernel_drops.get(reason, 0))
            handed = CounterMetricFamily(
                "onm_agent_ebpf_slowpath",
                "Frames the eBPF programs passed to the userspace core, by reason",
                labels=["reason"],
            )
            for why in SlowPath:
                handed.add_metric([why.name.lower()], slow.get(why, 0))
            programs = GaugeMetricFamily(
                "onm_agent_ebpf_program",
                "1 for each eBPF program attached (tc ingress), with its kernel id",
                labels=["program", "interface", "id"],
            )
            for program, interface, ident in self._kernel.programs():
                programs.add_metric([program, interface, str(ident)], 1)
            entries = GaugeMetricFamily(
                "onm_agent_ebpf_map_entries",
                "Entries the agent wrote in each eBPF map",
                labels=["map"],
            )
            for name, count in sorted(self._kernel.map_entries().items()):
                entries.add_metric([name], count)
            yield from (kernel, handed, programs, entries)
        for event, help_text in NAMED_EVENTS.items():
            family = CounterMetricFamily(f"onm_agent_{event.value}", help_text)
            family.add_metric([], p.events.get(event, 0))
            yield family
        other = CounterMetricFamily(
            "onm_agent_events", "Other happenings (ARP, caches, sockets)", labels=["event"]
        )
        for event in OTHER_EVENTS:
            other.add_metric([event.value], p.events.get(event, 0))
        yield other
        if self._firewall is not None:
            yield from firewall_families(self._firewall())
        yield GaugeMetricFamily("onm_agent_ports", "Node ports attached", value=p.ports)
        yield GaugeMetricFamily(
            "onm_agent_applied_revision", "Revision applied", value=p.applied_revision
        )
        yield GaugeMetricFamily(
            "onm_agent_manager_connected",
            "1 while the manager answers",
            value=int(p.manager_connected),
        )
        yield from _edge(p.edge)


def _edge(e: EdgePublished) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    labels = ["pool", "gateway"]
    sent: dict[str, CounterMetricFamily] = {
        "packets": CounterMetricFamily(
            "onm_agent_edge_sent_packets",
            "packets this host's nodes sent each gateway",
            labels=labels,
        ),
        "bytes": CounterMetricFamily(
            "onm_agent_edge_sent_bytes", "bytes this host's nodes sent each gateway", labels=labels
        ),
        "flows": CounterMetricFamily(
            "onm_agent_edge_new_flows",
            "flows this host's nodes started through each gateway",
            labels=labels,
        ),
    }
    pinned = GaugeMetricFamily(
        "onm_agent_edge_pinned_flows", "flows pinned to each gateway now", labels=labels
    )
    up = GaugeMetricFamily(
        "onm_agent_edge_gateway_up", "1 while this agent finds the gateway alive", labels=labels
    )
    others = GaugeMetricFamily(
        "onm_agent_edge_others_pinned_flows",
        "flows other senders pin to each gateway of a least-loaded pool, as the manager said",
        labels=labels,
    )
    for g in e.gateways:
        key = [g.pool, g.gateway]
        for name, family in sent.items():
            family.add_metric(key, getattr(g, name))
        pinned.add_metric(key, g.pinned)
        if g.up is not None:
            up.add_metric(key, int(g.up))
        if g.others is not None:
            others.add_metric(key, g.others)
    yield from sent.values()
    yield from (pinned, up, others)
    anycast = {
        what: CounterMetricFamily(
            f"onm_agent_edge_anycast_sent_{what}",
            f"{what} this host's nodes sent each anycast pool's shared /64 (the router chose)",
            labels=["pool"],
        )
        for what in ("packets", "bytes")
    }
    for pool_name, counts in e.anycast.items():
        for what, family in anycast.items():
            family.add_metric([pool_name], getattr(counts, what))
    yield from anycast.values()
    for name, help_text in FLOW_TABLE.items():
        yield CounterMetricFamily(
            f"onm_agent_edge_{name}", help_text, value=e.flow_table.get(name, 0)
        )
    changes = CounterMetricFamily(
        "onm_agent_edge_gateway_changes",
        "gateways found dead (down) and back (up)",
        labels=["change"],
    )
    for change in ("down", "up"):
        changes.add_metric([change], e.changes.get(change, 0))
    yield changes
    if e.tenants:
        packets = CounterMetricFamily(
            "onm_agent_edge_tenant_packets",
            "packets of each served network through this edge host (out: to the external network)",
            labels=["network", "direction"],
        )
        octets = CounterMetricFamily(
            "onm_agent_edge_tenant_bytes",
            "bytes of each served network through this edge host",
            labels=["network", "direction"],
        )
        for vni, c in sorted(e.tenants.items()):
            packets.add_metric([str(vni), "out"], c.egress_packets)
            packets.add_metric([str(vni), "in"], c.ingress_packets)
            octets.add_metric([str(vni), "out"], c.egress_bytes)
            octets.add_metric([str(vni), "in"], c.ingress_bytes)
        yield from (packets, octets)
    if e.conntrack is not None:
        for name, help_text in CONNTRACK.items():
            yield CounterMetricFamily(
                f"onm_agent_edge_conntrack_{name}", help_text, value=getattr(e.conntrack, name)
            )
        yield GaugeMetricFamily(
            "onm_agent_edge_conntrack_entries",
            "conntrack entries in the edge host's namespace",
            value=e.conntrack.entries,
        )


def firewall_families(
    counts: Sequence[tuple[Counter, int, int]],
) -> tuple[CounterMetricFamily, CounterMetricFamily]:
    """A gateway's firewall counters: per rule (by its id) and per default verdict."""
    rules = CounterMetricFamily(
        "onm_agent_gateway_rule_packets",
        "Packets of new connections an edge pool's firewall rule matched on this gateway",
        labels=["network", "rule"],
    )
    defaults = CounterMetricFamily(
        "onm_agent_gateway_default_packets",
        "Packets no rule matched, by the default verdict (or drop) that took them",
        labels=["network", "verdict"],
    )
    for counter, packets, _ in counts:
        if counter.rule_id is not None:
            rules.add_metric([str(counter.vni), counter.rule_id], packets)
        elif counter.builtin is not None:
            defaults.add_metric([str(counter.vni), counter.builtin.value], packets)
    return rules, defaults


def serve(metrics: Metrics, host: str, port: int) -> None:
    registry = CollectorRegistry()
    registry.register(metrics)
    start_http_server(port, addr=host, registry=registry)
