"""Prometheus metrics of one agent, served on a local port (`--metrics HOST:PORT`).

The datapath loop owns the counters; it publishes a copy every second (`Published`), and the
collector reads only that copy, so the HTTP thread never iterates what the loop is changing.
On an edge host the gateway's firewall counters live in the kernel: `firewall` reads them when
a scrape asks (`onm_agent_gateway_rule_packets_total{network, rule}` per rule of an edge pool,
`onm_agent_gateway_default_packets_total{network, verdict}` per default verdict and drop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from onm.agent.counters import DIRECTIONS, Counters, Direction, Event
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


@dataclass
class Published:
    packets: dict[Direction, int] = field(default_factory=dict)
    bytes: dict[Direction, int] = field(default_factory=dict)
    drops: dict[DropReason, int] = field(default_factory=dict)
    events: dict[Event, int] = field(default_factory=dict)
    ports: int = 0
    applied_revision: int = 0
    manager_connected: bool = False


FirewallCounts = Callable[[], Sequence[tuple[Counter, int, int]]]
"""The gateway's named counters with their (packets, bytes)."""


class Metrics(Collector):
    def __init__(self, firewall: FirewallCounts | None = None) -> None:
        self._lock = threading.Lock()
        self._current = Published()
        self._firewall = firewall

    def publish(self, counters: Counters, ports: int, revision: int, connected: bool) -> None:
        copy = Published(
            dict(counters.packets),
            dict(counters.bytes),
            dict(counters.drops),
            dict(counters.events),
            ports,
            revision,
            connected,
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
        for reason in DropReason:
            drops.add_metric([reason.label], p.drops.get(reason, 0))
        resolutions = CounterMetricFamily(
            "onm_agent_resolutions", "Answers from the manager by result", labels=["result"]
        )
        for event, label in RESOLUTION_RESULTS.items():
            resolutions.add_metric([label], p.events.get(event, 0))
        yield from (packets, octets, drops, resolutions)
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
