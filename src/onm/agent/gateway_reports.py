"""What an agent tells the manager of the edge gateways it probes or serves, sans-IO (issue #10;
seed 1: the manager learns that a gateway stopped forwarding; `onm.manager.gateway_health`).

Rules:
- A report names every gateway this agent probes (alive or dead, as `onm.agent.probes` finds
  it) with what this host's nodes sent through it since the agent started: flows pinned to it
  now, new flows, packets, bytes (`onm.agent.egress`); and every gateway this host runs, alive
  (the report is this agent's word that it serves). Gateways of pools it neither sends through
  nor serves are not its business.
- A gateway this host runs is reported with its firewall counts (per rule and per default
  verdict, `onm.netlink.gateway_plan.Counter`): the core marks it (`serves`), the link reads
  the kernel's counters off the datapath loop and adds them (`with_counts`), as the metrics do.
- A change of liveness is reported at once, or `MIN_GAP` after the previous report (changes in
  between are gathered into one); otherwise every `REPORT_EVERY` while there is something to
  report (the manager holds a gateway whose own agent went silent for three reports down).
Time passes only when told (`now`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from onm.agent.actions import GatewayReport, ReportGateways
from onm.agent.tables import EdgeEntry
from onm.model.ids import GatewayId
from onm.model.pool import HEALTH_REPORT_EVERY
from onm.netlink.gateway_plan import Counter

REPORT_EVERY: Final = dt.timedelta(seconds=HEALTH_REPORT_EVERY)
MIN_GAP: Final = dt.timedelta(seconds=0.25)
"""The least time between two reports: a flapping gateway costs the manager 4 reports a second
at most."""


class Sent(Protocol):
    """What this host's nodes sent one gateway (`onm.agent.egress.GatewayCounts`)."""

    @property
    def packets(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def flows(self) -> int: ...


def figures(
    pools: Iterable[EdgeEntry],
    probed: Callable[[GatewayId], bool | None],
    pinned: Mapping[str, int],
    sent: Mapping[GatewayId, Sent],
    serving: Mapping[int, GatewayId] | None = None,
) -> tuple[GatewayReport, ...]:
    """Every gateway to report (the module's first rule), in pool and gateway order. `probed`:
    alive or dead as probed, None for a gateway this agent does not probe; `serving`: network
    -> the gateway this host serves it by (`Tables.duties`)."""
    found = []
    serves = {g: vni for vni, g in (serving or {}).items()}
    for pool in pools:
        for gateway in pool.gateways.values():
            alive = True if gateway.local else probed(gateway.id)
            if alive is None:
                continue
            counts = sent.get(gateway.id)
            found.append(
                GatewayReport(
                    gateway.id,
                    pool.id,
                    alive,
                    pinned.get(gateway.id, 0),
                    0 if counts is None else counts.flows,
                    0 if counts is None else counts.packets,
                    0 if counts is None else counts.bytes,
                    serves.get(gateway.id) if gateway.local else None,
                )
            )
    return tuple(found)


def with_counts(
    gateways: Iterable[GatewayReport], counts: Sequence[tuple[Counter, int, int]]
) -> tuple[GatewayReport, ...]:
    """The gateways with the firewall counts (`EdgeSide.firewall_counts`: counter, packets,
    bytes) of the networks they serve here added; the others as they are."""
    rules: dict[int, list[tuple[str, int]]] = {}
    defaults: dict[int, list[tuple[str, int]]] = {}
    for counter, packets, _ in counts:
        if counter.rule_id is not None:
            rules.setdefault(counter.vni, []).append((counter.rule_id, packets))
        elif counter.builtin is not None:
            defaults.setdefault(counter.vni, []).append((counter.builtin.value, packets))
    return tuple(
        g
        if g.serves is None
        else replace(
            g, rules=tuple(rules.get(g.serves, ())), defaults=tuple(defaults.get(g.serves, ()))
        )
        for g in gateways
    )


@dataclass(slots=True)
class Reporter:
    reported_at: dt.datetime | None = None
    pending: list[GatewayReport] = field(default_factory=list)
    """Changes not reported yet."""

    def changed(self, changes: Iterable[GatewayReport]) -> None:
        self.pending.extend(changes)

    def next_timer(self, reportable: bool) -> dt.datetime | None:
        """When the next report is due (None: nothing to report)."""
        if self.reported_at is None:
            return dt.datetime.min.replace(tzinfo=dt.UTC) if reportable or self.pending else None
        if self.pending:
            return self.reported_at + MIN_GAP
        return self.reported_at + REPORT_EVERY if reportable else None

    def report(
        self, now: dt.datetime, gateways: tuple[GatewayReport, ...]
    ) -> ReportGateways | None:
        """The report due at `now` (with the changes gathered since the last), if one is."""
        due = self.next_timer(bool(gateways))
        if due is None or due > now:
            return None
        self.reported_at = now
        changed, self.pending = tuple(self.pending), []
        return ReportGateways(gateways, changed)
