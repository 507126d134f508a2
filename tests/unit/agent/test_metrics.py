"""onm.agent.metrics: every counter name the agent has is exported, zero or not."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from onm.agent.counters import Counters, Direction, Event
from onm.agent.datapath.ebpf.layout import SlowPath
from onm.agent.gateway import TenantCounts
from onm.agent.io.conntrack import ConntrackStats
from onm.agent.metrics import (
    NAMED_EVENTS,
    RESOLUTION_RESULTS,
    EdgePublished,
    GatewayFigures,
    Metrics,
)
from onm.netlink.gateway_plan import Builtin, Counter
from onm.packet.drop import DropReason


def _scrape(counters: Counters) -> dict[str, float]:
    metrics = Metrics()
    metrics.publish(counters, ports=2, revision=7, connected=True)
    registry = CollectorRegistry()
    registry.register(metrics)
    samples: dict[str, float] = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _name(event: Event) -> str:
    if event in NAMED_EVENTS:
        return f"onm_agent_{event.value}_total"
    if event in RESOLUTION_RESULTS:
        return f'onm_agent_resolutions_total{{result="{RESOLUTION_RESULTS[event]}"}}'
    return f'onm_agent_events_total{{event="{event.value}"}}'


def test_every_event_is_exported_with_its_own_count() -> None:
    counters = Counters()
    for times, event in enumerate(Event, start=1):
        counters.event(event, times)
    samples = _scrape(counters)
    for times, event in enumerate(Event, start=1):
        assert samples[_name(event)] == times, event
    assert len({_name(e) for e in Event}) == len(Event)  # no two events share a sample


def test_every_event_direction_and_drop_reason_is_exported_before_it_happens() -> None:
    samples = _scrape(Counters())
    assert all(samples[_name(e)] == 0 for e in Event)
    for direction in Direction:
        assert samples[f'onm_agent_packets_total{{direction="{direction.value}"}}'] == 0
        assert samples[f'onm_agent_bytes_total{{direction="{direction.value}"}}'] == 0
    for reason in DropReason:
        assert samples[f'onm_agent_drops_total{{reason="{reason.label}"}}'] == 0
    assert samples["onm_agent_ports"] == 2 and samples["onm_agent_applied_revision"] == 7


def test_counted_directions_and_drops_are_exported() -> None:
    counters = Counters()
    counters.count(Direction.TO_SUBSTRATE, 100)
    counters.count(Direction.TO_SUBSTRATE, 50)
    counters.drop(DropReason.NO_MAPPING)
    samples = _scrape(counters)
    assert samples['onm_agent_packets_total{direction="to_substrate"}'] == 2
    assert samples['onm_agent_bytes_total{direction="to_substrate"}'] == 150
    assert samples[f'onm_agent_drops_total{{reason="{DropReason.NO_MAPPING.label}"}}'] == 1


def test_a_gateways_firewall_counters_are_exported_per_rule_and_per_default() -> None:
    """Read from the kernel when scraped (here a stand-in for `EdgeSide.firewall_counts`)."""
    rule = Counter("vni7-rul-0123456789ab", 7, "rul-0123456789ab", None)
    dropped = Counter("vni7.ingress-dropped", 7, None, Builtin.INGRESS_DROPPED)
    metrics = Metrics(lambda: [(rule, 12, 720), (dropped, 3, 180)])
    metrics.publish(Counters(), ports=0, revision=1, connected=True)
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    assert 'onm_agent_gateway_rule_packets_total{network="7",rule="rul-0123456789ab"} 12.0' in text
    assert (
        'onm_agent_gateway_default_packets_total{network="7",verdict="ingress-dropped"} 3.0' in text
    )


def test_edge_figures_are_exported_per_pool_and_gateway() -> None:
    edge = EdgePublished(
        [
            GatewayFigures("egress", "e1", True, 3, 7, 70, 7000, others=12),
            GatewayFigures("egress", "e2", None, 0, 0, 0, 0),
        ],
        {"selections": 9, "rehashed": 2, "evicted": 0, "expired": 1, "rebalanced": 4},
        {"down": 1},
        {7: TenantCounts(5, 500, 4, 400)},
        ConntrackStats(entries=12, insert_failed=3, drop=1, early_drop=0),
    )
    metrics = Metrics()
    metrics.publish(Counters(), ports=0, revision=1, connected=True, edge=edge)
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    key = '{gateway="e1",pool="egress"}'
    assert float(samples[f"onm_agent_edge_sent_packets_total{key}"]) == 70
    assert float(samples[f"onm_agent_edge_sent_bytes_total{key}"]) == 7000
    assert float(samples[f"onm_agent_edge_new_flows_total{key}"]) == 7
    assert float(samples[f"onm_agent_edge_pinned_flows{key}"]) == 3
    assert float(samples[f"onm_agent_edge_gateway_up{key}"]) == 1
    assert 'onm_agent_edge_gateway_up{gateway="e2",pool="egress"}' not in samples  # not probed
    assert float(samples[f"onm_agent_edge_others_pinned_flows{key}"]) == 12
    assert 'onm_agent_edge_others_pinned_flows{gateway="e2",pool="egress"}' not in samples
    for name, value in edge.flow_table.items():
        assert float(samples[f"onm_agent_edge_{name}_total"]) == value
    assert float(samples['onm_agent_edge_gateway_changes_total{change="down"}']) == 1
    assert float(samples['onm_agent_edge_tenant_packets_total{direction="out",network="7"}']) == 5
    assert float(samples['onm_agent_edge_tenant_bytes_total{direction="in",network="7"}']) == 400
    assert float(samples["onm_agent_edge_conntrack_insert_failed_total"]) == 3
    assert float(samples["onm_agent_edge_conntrack_entries"]) == 12


def test_a_node_host_exports_no_gateway_side_figures() -> None:
    samples = _scrape(Counters())
    assert samples["onm_agent_edge_selections_total"] == 0
    assert not any(
        k.startswith(("onm_agent_edge_tenant", "onm_agent_edge_conntrack")) for k in samples
    )


class _Kernel:
    """The eBPF programs' counters as the datapath reads them (summed over CPUs)."""

    def drops(self) -> dict[DropReason, int]:
        return {DropReason.SPOOFED_SOURCE_MAC: 5}

    def slow_paths(self) -> dict[SlowPath, int]:
        return {SlowPath.ARP: 3}

    def programs(self) -> list[tuple[str, str, int]]:
        return [("onm_substrate_ingress", "sub0", 41), ("onm_node_ingress", "p1", 42)]

    def map_entries(self) -> dict[str, int]:
        return {"onm_mappings": 2, "onm_ports": 1}


def test_on_ebpf_the_kernel_drops_count_in_the_drops_and_the_slow_path_is_shown() -> None:
    counters = Counters()
    counters.drop(DropReason.SPOOFED_SOURCE_MAC)
    counters.drop(DropReason.SPOOFED_SOURCE_MAC)
    metrics = Metrics(kernel=_Kernel(), datapath="ebpf")
    metrics.publish(counters, ports=2, revision=7, connected=True)
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    assert 'onm_agent_drops_total{reason="spoofed_source_mac"} 7.0' in text
    assert 'onm_agent_ebpf_drops_total{reason="spoofed_source_mac"} 5.0' in text
    assert 'onm_agent_ebpf_slowpath_total{reason="arp"} 3.0' in text
    assert 'onm_agent_datapath{datapath="ebpf"} 1.0' in text
    assert 'onm_agent_ebpf_program{id="42",interface="p1",program="onm_node_ingress"} 1.0' in text
    assert 'onm_agent_ebpf_map_entries{map="onm_mappings"} 2.0' in text


def test_on_userspace_there_are_no_ebpf_families() -> None:
    samples = _scrape(Counters())
    assert samples['onm_agent_datapath{datapath="userspace"}'] == 1
    assert not [name for name in samples if name.startswith("onm_agent_ebpf_")]
