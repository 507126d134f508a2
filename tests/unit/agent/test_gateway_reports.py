"""What an agent reports of edge gateways (onm.agent.gateway_reports): the gateways it probes
with what its nodes sent each, its own gateways alive, nobody else's; a change at once (or
`MIN_GAP` after the last report), otherwise every `REPORT_EVERY`."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

from onm.agent.actions import GatewayReport
from onm.agent.egress import GatewayCounts
from onm.agent.gateway_reports import MIN_GAP, REPORT_EVERY, Reporter, figures, with_counts
from onm.agent.tables import EdgeEntry, GatewayEntry
from onm.model.edge_pool import Choice, Mode, Nat
from onm.model.ids import EdgePoolId, GatewayId
from onm.netlink.gateway_plan import Builtin, Counter

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
POOL = EdgePoolId("edg-1")


def gateway(name: str, local: bool = False) -> GatewayEntry:
    return GatewayEntry(GatewayId(f"gwy-{name}"), name, POOL, 1, bytes(8), bytes(4), True, local)


def pool(*gateways: GatewayEntry) -> EdgeEntry:
    return EdgeEntry(
        POOL, "egress", 7, Nat.SNAT, frozenset(), Choice.HASH, Mode.DIRECT, None, 1.0,
        MappingProxyType({g.id: g for g in gateways}),
    )  # fmt: skip


def test_probed_gateways_with_their_figures_and_local_ones_alive() -> None:
    probed = {GatewayId("gwy-e1"): True, GatewayId("gwy-e2"): False}
    found = figures(
        [pool(gateway("e1"), gateway("e2"), gateway("e3"), gateway("mine", local=True))],
        probed.get,
        {"gwy-e1": 4},
        {GatewayId("gwy-e1"): GatewayCounts(packets=10, bytes=1000, flows=5)},
    )
    assert found == (
        GatewayReport(GatewayId("gwy-e1"), POOL, True, 4, 5, 10, 1000),
        GatewayReport(GatewayId("gwy-e2"), POOL, False),
        GatewayReport(GatewayId("gwy-mine"), POOL, True),  # e3: not probed, not ours
    )


def test_reports_at_once_then_every_report_every_and_changes_within_min_gap() -> None:
    reporter = Reporter()
    some = (GatewayReport(GatewayId("gwy-e1"), POOL, True),)
    assert reporter.next_timer(False) is None and reporter.report(NOW, ()) is None
    first = reporter.report(NOW, some)
    assert first is not None and (first.gateways, first.changed) == (some, ())
    assert reporter.next_timer(True) == NOW + REPORT_EVERY
    assert reporter.report(NOW + REPORT_EVERY / 2, some) is None
    down = GatewayReport(GatewayId("gwy-e1"), POOL, False)
    reporter.changed([down])
    assert reporter.next_timer(True) == NOW + MIN_GAP
    assert reporter.report(NOW + MIN_GAP / 2, (down,)) is None  # gathered, not sent yet
    later = reporter.report(NOW + MIN_GAP, (down,))
    assert later is not None and later.changed == (down,)
    assert reporter.next_timer(False) is None  # nothing left to report
    assert reporter.report(NOW + MIN_GAP + REPORT_EVERY, some) is not None


def test_the_gateway_this_host_serves_a_network_by_is_marked_for_its_firewall_counts() -> None:
    mine, second = gateway("mine", local=True), gateway("second", local=True)
    found = figures([pool(mine, second)], {}.get, {}, {}, {7: mine.id})
    assert [(g.gateway_id, g.serves) for g in found] == [(mine.id, 7), (second.id, None)]


def test_firewall_counts_go_to_the_gateway_serving_their_network_only() -> None:
    served = GatewayReport(GatewayId("gwy-mine"), POOL, True, serves=7)
    probed = GatewayReport(GatewayId("gwy-e1"), POOL, True, 1, 2, 3, 4)
    counts = [
        (Counter("vni7-rule-a", 7, "rule-a", None), 5, 300),
        (Counter("vni7-rule-b", 7, "rule-b", None), 0, 0),
        (Counter("vni7.egress-allowed", 7, None, Builtin.EGRESS_ALLOWED), 11, 660),
        (Counter("vni9-rule-c", 9, "rule-c", None), 8, 480),  # a network served by no report
    ]
    assert with_counts([served, probed], counts) == (
        GatewayReport(
            served.gateway_id,
            POOL,
            True,
            serves=7,
            rules=(("rule-a", 5), ("rule-b", 0)),
            defaults=(("egress-allowed", 11),),
        ),
        probed,
    )
    assert with_counts([served], []) == (served,)
