"""Pool member health as the manager holds it: reports from the agents hosting members in,
staleness out (seed 0: the manager aggregates monitoring; DESIGN.md section 4).

- An agent reports the health of the members it hosts, and nobody else's: at each change and
  at least every `HEALTH_REPORT_EVERY` seconds (the report is also its word that the check
  still runs). A change of health is an event and reaches every host of the network (their
  agents steer); a report that changes nothing but the time and the load touches no snapshot.
- A member whose last report is older than `stale_after` (three missed reports, plus one
  check's interval and timeout) is `unknown`: its agent is silent or gone, and its last word is
  not trusted forever (the OVN "BFD status never invalidated" failure). `expire` makes the
  change; the manager runs it every second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update

from onm.errors import ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import access, actions, hosts, networks, nodes, pools, tables
from onm.manager.store import Tx
from onm.model.pool import HEALTH_REPORT_EVERY, Health, HealthCheck, Member, Pool

MISSED_REPORTS = 3
REPORTABLE = frozenset({Health.UP, Health.DOWN})
"""What an agent may say of a member: its checks pass or fail (`initial` is the manager's until
then, `unknown` the manager's when reports stop)."""
MAX_LOAD = 1e12


@dataclass(frozen=True, slots=True)
class MemberReport:
    pool_id: str
    """The pool: its id (what agents send), or a name."""
    node_id: str
    """The member node: its id, or its name in the pool's network."""
    health: Health
    load: float


def stale_after(check: HealthCheck) -> dt.timedelta:
    return dt.timedelta(
        seconds=MISSED_REPORTS * HEALTH_REPORT_EVERY + check.interval + check.timeout
    )


def is_stale(member: Member, check: HealthCheck, now: dt.datetime) -> bool:
    """Pure: has `member`'s report gone stale at `now`? (Only a reported health can.)"""
    if member.health not in REPORTABLE:
        return False
    last = member.reported_at or member.since
    return now - last > stale_after(check)


def report(tx: Tx, host_ref: str, reports: Iterable[MemberReport]) -> list[Member]:
    """Health from the agent of `host_ref` for members it hosts; the members as now held."""
    access.require_not_tenant(tx.actor, "report member health")
    host = hosts.get(tx, host_ref)
    if tx.actor.host_id is not None and tx.actor.host_id != host.id:
        raise ForbiddenError(f"a host reports for itself only, not for {host.name!r}")
    m = tables.pool_members
    changed: list[tuple[Pool, Member, Health]] = []
    result = []
    for item in reports:
        if item.health not in REPORTABLE:
            raise InvalidInputError("health", f"{item.health.value!r}: report up or down")
        if not 0 <= item.load <= MAX_LOAD:
            raise InvalidInputError("load", f"{item.load:g} is outside 0..{MAX_LOAD:g}")
        pool = pools.get(tx, item.pool_id)
        node = nodes.get(tx, item.node_id, pool.network_id)
        row = tx.connection.execute(
            select(m).where(m.c.pool_id == pool.id, m.c.node_id == node.id)
        ).first()
        if row is None or row.host_id != host.id:
            raise NotFoundError(f"no member {node.name!r} of pool {pool.name!r} on this host")
        member = pools.member_from_row(row)
        values: dict[str, object] = {"reported_at": tx.now, "load": item.load}
        if item.health is not member.health:
            values |= {"health": item.health.value, "since": tx.now}
            changed.append((pool, member, item.health))
        key = (m.c.pool_id == pool.id) & (m.c.node_id == node.id)
        tx.connection.execute(update(m).where(key).values(**values))
        result.append(member)
    for pool, member, health in changed:
        _record_change(tx, pool, member, health, "reported")
    return result


def expire(tx: Tx) -> int:
    """Members whose reports went stale become `unknown` (each an event); how many did."""
    m = tables.pool_members
    rows = tx.connection.execute(
        select(m).where(m.c.health.in_([h.value for h in REPORTABLE]))
    ).all()
    count = 0
    checks: dict[str, Pool] = {}
    for row in rows:
        member = pools.member_from_row(row)
        pool = checks.get(member.pool_id) or pools.get_by_id(tx, member.pool_id)
        checks[pool.id] = pool
        if not is_stale(member, pool.check, tx.now):
            continue
        key = (m.c.pool_id == member.pool_id) & (m.c.node_id == member.node_id)
        tx.connection.execute(
            update(m).where(key).values(health=Health.UNKNOWN.value, since=tx.now)
        )
        _record_change(tx, pool, member, Health.UNKNOWN, "no report")
        count += 1
    return count


def _record_change(tx: Tx, pool: Pool, member: Member, health: Health, why: str) -> None:
    network = networks.get(tx, pool.network_id)
    node = tx.connection.execute(
        select(tables.nodes.c.name).where(tables.nodes.c.id == member.node_id)
    ).scalar_one()
    tx.record(
        "pool.member_health",
        pool.id,
        network.tenant_id,
        {
            "pool": pool.name,
            "node": node,
            "from": member.health.value,
            "to": health.value,
            "why": why,
        },
        networks.hosts_of(tx, network.id),
    )
    after = actions.healthy_count(tx, pool.id) if pool.actions else 0
    actions.changed(tx, pool, after - (health is Health.UP) + (member.health is Health.UP))
