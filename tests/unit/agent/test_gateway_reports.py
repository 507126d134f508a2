"""What an agent reports of edge gateways (onm.agent.gateway_reports): the gateways it probes
with what its nodes sent each, its own gateways alive, nobody else's; a change at once (or
`MIN_GAP` after the last report), otherwise every `REPORT_EVERY`."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

from onm.agent.actions import GatewayReport
from onm.agent.egress import GatewayCounts
from onm.agent.gateway_reports import MIN_GAP, REPORT_EVERY, Reporter, figures
from onm.agent.tables import EdgeEntry, GatewayEntry
from onm.model.edge_pool import Choice, Mode, Nat
from onm.model.ids import EdgePoolId, GatewayId

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
