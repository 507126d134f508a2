"""What an agent tells the manager of the edge gateways it probes or serves, sans-IO (issue #10;
seed 1: the manager learns that a gateway stopped forwarding; `onm.manager.gateway_health`).

Rules:
- A report names every gateway this agent probes (alive or dead, as `onm.agent.probes` finds
  it) with what this host's nodes sent through it since the agent started: flows pinned to it
  now, new flows, packets, bytes (`onm.agent.egress`); and every gateway this host runs, alive
  (the report is this agent's word that it serves). Gateways of pools it neither sends through
  nor serves are not its business.
- A change of liveness is reported at once, or `MIN_GAP` after the previous report (changes in
  between are gathered into one); otherwise every `REPORT_EVERY` while there is something to
  report (the manager holds a gateway whose own agent went silent for three reports down).
Time passes only when told (`now`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from onm.agent.actions import GatewayReport, ReportGateways
from onm.agent.tables import EdgeEntry
from onm.model.ids import GatewayId
from onm.model.pool import HEALTH_REPORT_EVERY

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
) -> tuple[GatewayReport, ...]:
    """Every gateway to report (the module's first rule), in pool and gateway order. `probed`:
    alive or dead as probed, None for a gateway this agent does not probe."""
    found = []
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
                )
            )
    return tuple(found)


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
