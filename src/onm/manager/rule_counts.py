"""What each edge pool's firewall rules (and default verdicts) matched, summed over its
gateways (issue #10: "denials counted per rule"; `onm.netlink.gateway_plan` counts them in each
gateway's kernel).

Rules:
- Only a gateway's own host's agent reports its counts, with its gateway report
  (`onm.manager.gateway_health.report`); the latest count per (host, gateway, rule) and per
  (host, gateway, verdict) is kept.
- A rule the pool no longer has (deleted between the agent's read and its report, or another
  pool's) is ignored, not refused: the report's health figures must still count. So is a
  verdict this manager does not know (a newer agent's).
- A gateway's counters count from when its agent made them. One that goes down was reset (the
  agent, or its namespace, restarted): what it had counted is carried, so a pool's figure is
  what its gateways counted since the rule was added, less what a gateway counted between its
  last report and its reset.
- Counts go with their rule, gateway or host (ON DELETE CASCADE).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from sqlalchemy import Table, func, insert, select, update

from onm.errors import InvalidInputError
from onm.manager import tables
from onm.manager.store import Tx
from onm.model.edge_pool import Gateway
from onm.model.edge_rule import CountedRule, DefaultCount, EdgeRule
from onm.netlink.gateway_plan import Builtin

VERDICTS: Final = tuple(b.value for b in Builtin)
"""The default verdicts (and drops) a gateway counts, in the order shown."""


def record(
    tx: Tx,
    host_id: str,
    gateway: Gateway,
    rules: Sequence[tuple[str, int]],
    defaults: Sequence[tuple[str, int]],
) -> int:
    """Keep what `host_id`'s agent counted on `gateway` (its own); how many counts were kept
    (the module's rules: unknown rules and verdicts are ignored)."""
    if not rules and not defaults:
        return 0
    if gateway.host_id != host_id:
        raise InvalidInputError(
            "rules", f"gateway {gateway.name!r} does not run on this host: no firewall counts"
        )
    by_rule = _unique(rules, "rules")
    by_verdict = _unique(defaults, "defaults")
    r = tables.edge_rules
    known = {
        row.id
        for row in tx.connection.execute(
            select(r.c.id).where(r.c.pool_id == gateway.pool_id, r.c.id.in_(sorted(by_rule)))
        )
    }
    kept = _store(tx, tables.rule_counts, "rule_id", host_id, gateway.id, _only(by_rule, known))
    return kept + _store(
        tx,
        tables.default_counts,
        "verdict",
        host_id,
        gateway.id,
        _only(by_verdict, set(VERDICTS)),
    )


def counted(tx: Tx, rules: Sequence[EdgeRule]) -> tuple[CountedRule, ...]:
    """These rules, each with its packets summed over every gateway that counted it."""
    c = tables.rule_counts
    total = func.sum(c.c.packets + c.c.carried)
    ids = sorted({rule.id for rule in rules})
    sums = {
        row.rule_id: int(row.total)
        for row in tx.connection.execute(
            select(c.c.rule_id, total.label("total"))
            .where(c.c.rule_id.in_(ids))
            .group_by(c.c.rule_id)
        )
    }
    return tuple(_with(rule, sums.get(rule.id, 0)) for rule in rules)


def defaults_of(tx: Tx, pool_id: str) -> tuple[DefaultCount, ...]:
    """What no rule of the pool matched, per verdict counted, summed over its gateways."""
    d, g = tables.default_counts, tables.edge_gateways
    total = func.sum(d.c.packets + d.c.carried)
    rows = tx.connection.execute(
        select(d.c.verdict, total.label("total"))
        .select_from(d.join(g, d.c.gateway_id == g.c.id))
        .where(g.c.pool_id == pool_id)
        .group_by(d.c.verdict)
    )
    sums = {row.verdict: int(row.total) for row in rows}
    return tuple(DefaultCount(v, sums[v]) for v in VERDICTS if v in sums)


# --- helpers --------------------------------------------------------------------------------


def _with(rule: EdgeRule, packets: int) -> CountedRule:
    given = {f.name: getattr(rule, f.name) for f in dataclasses.fields(EdgeRule)}
    return CountedRule(**given, packets=packets)


def _unique(items: Iterable[tuple[str, int]], name: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for key, packets in items:
        if key in found:
            raise InvalidInputError(name, f"{key!r} is reported twice")
        found[key] = packets
    return found


def _only(counts: Mapping[str, int], known: set[str]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k in known}


def _store(
    tx: Tx, table: Table, key: str, host_id: str, gateway_id: str, counts: Mapping[str, int]
) -> int:
    """Upsert the counts of one gateway by one host; a count that went down was reset (carried)."""
    if not counts:
        return 0
    mine = (table.c.host_id == host_id) & (table.c.gateway_id == gateway_id)
    rows = tx.connection.execute(
        select(table.c[key], table.c.packets, table.c.carried).where(
            mine, table.c[key].in_(sorted(counts))
        )
    )
    before = {row[0]: (int(row.packets), int(row.carried)) for row in rows}
    for name, packets in counts.items():
        last = before.get(name)
        if last is None:
            tx.connection.execute(
                insert(table).values(
                    host_id=host_id,
                    gateway_id=gateway_id,
                    packets=packets,
                    carried=0,
                    changed_at=tx.now,
                    **{key: name},
                )
            )
        elif last[0] != packets:
            carried = last[1] + (last[0] if packets < last[0] else 0)
            tx.connection.execute(
                update(table)
                .where(mine, table.c[key] == name)
                .values(packets=packets, carried=carried, changed_at=tx.now)
            )
    return len(counts)
