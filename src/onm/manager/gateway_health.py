"""Edge gateway health as the manager holds it: what agents say of each gateway in, one verdict
per gateway out, and its changes as events (issue #10; seed 1: a gateway that stops forwarding is
noticed; DESIGN.md section 5). The pattern is pool member health's (`onm.manager.health`).

Theory of operation:
- Every agent that sends through an edge pool probes its gateways (`onm.agent.probes`); every
  edge host's agent serves its own. Each reports, at every change and at least every
  `HEALTH_REPORT_EVERY` seconds, every gateway it probes (alive or dead, as its probes find it)
  or serves (alive: the report is its agent's word that it runs), with what its nodes sent
  through each since the agent started (flows pinned now, new flows, packets, bytes). The last
  report of each (gateway, reporter) is kept; only host tokens report, each for itself. A
  gateway's own agent adds its firewall counts (`onm.manager.rule_counts`).
- A report is fresh for `STALE_AFTER` (three missed reports and one second). The verdict, in
  this order:
  1. `down` when the gateway's own host's agent is silent: its last report is stale, or it has
     sent none and the gateway is older than `STALE_AFTER` (the process killed, the host gone);
     or when that agent itself says it cannot serve;
  2. `down` when any fresh report from another host says it is dead (any prober: a gateway some
     sender cannot reach is not forwarding for that sender; the probers are named);
  3. `up` when its own agent's report, or any prober's, is fresh (and none says dead);
  4. `unknown` while nothing has been heard (a new gateway, a manager just migrated).
- A change to `up` or `down` is an event, `gateway.up` or `gateway.down` (the pool, the
  gateway, why and who says so). The sending agents steer by their own probes, so snapshots
  change only for a pool with public IPs: a gateway judged down holds none
  (`compiler.public_ip_owner`), so its addresses move to a survivor, which claims them on the
  external network, and back when it is up again. `expire` judges every gateway again
  (reports going stale); the manager runs it every second.
- Flows, packets and bytes shown are summed over every reporter's last report (a restarted
  agent counts from zero again); flows pinned now only over fresh ones.
- The answer to a report carries, for every gateway of the `least-loaded` pools the reporter
  reported on, the flows the *other* reporters pin to it (fresh reports only): the load a
  sending agent adds its own pins to when it chooses a new flow's gateway (`onm.agent.flows`).
  Load changes no snapshot: it travels back with the reports, every `HEALTH_REPORT_EVERY`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from onm.errors import ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import access, edge_pools, edge_rows, hosts, networks, rule_counts, tables
from onm.manager.health import MISSED_REPORTS
from onm.manager.store import Tx
from onm.model import PrincipalKind
from onm.model.edge_pool import Choice, EdgePool, Gateway, GatewayState
from onm.model.pool import HEALTH_REPORT_EVERY, Health

STALE_AFTER = dt.timedelta(seconds=MISSED_REPORTS * HEALTH_REPORT_EVERY + 1)
EVENTS = {Health.UP: "gateway.up", Health.DOWN: "gateway.down"}
"""The verdicts that are events, and their kinds (`unknown` is only the absence of news)."""


@dataclass(frozen=True, slots=True)
class GatewayFigures:
    """One gateway as one agent reports it."""

    gateway_id: str
    alive: bool
    pinned: int = 0
    """Flows of the agent's nodes pinned to it now."""
    flows: int = 0
    """New flows the agent's nodes started through it."""
    packets: int = 0
    bytes: int = 0
    rules: tuple[tuple[str, int], ...] = ()
    """(rule id, packets) its firewall counted: only from the gateway's own host
    (`onm.manager.rule_counts`)."""
    defaults: tuple[tuple[str, int], ...] = ()
    """(verdict, packets), likewise."""


@dataclass(frozen=True, slots=True)
class Heard:
    """A reporter's last word on a gateway."""

    host_id: str
    host: str
    """The reporter's name."""
    figures: GatewayFigures
    reported_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health
    why: str
    said_by: tuple[str, ...] = ()
    """The hosts whose reports decided it (by name)."""


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """A gateway with the manager's verdict and what its reporters say."""

    gateway: Gateway
    host: str
    health: Health
    since: dt.datetime | None
    why: str
    heard: tuple[Heard, ...]
    pinned: int
    flows: int
    packets: int
    bytes: int


def judge(gateway: Gateway, heard: Sequence[Heard], now: dt.datetime) -> Verdict:
    """Pure: the gateway's health at `now` from its reporters' last words (the module's rules)."""
    fresh = [h for h in heard if now - h.reported_at <= STALE_AFTER]
    own = next((h for h in heard if h.host_id == gateway.host_id), None)
    if own is not None and own not in fresh:
        return Verdict(Health.DOWN, f"its agent has been silent since {own.reported_at:%X}")
    if own is None and now - gateway.created_at > STALE_AFTER:
        return Verdict(Health.DOWN, "its agent has not reported")
    if own is not None and not own.figures.alive:
        return Verdict(Health.DOWN, "its agent says it cannot serve", (own.host,))
    dead = tuple(sorted(h.host for h in fresh if h is not own and not h.figures.alive))
    if dead:
        return Verdict(Health.DOWN, f"not answering the probes of {', '.join(dead)}", dead)
    if fresh:
        said = tuple(sorted(h.host for h in fresh))
        return Verdict(Health.UP, "serving" if own in fresh else "answering probes", said)
    return Verdict(Health.UNKNOWN, "nothing heard yet")


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """What the manager answers a gateway report."""

    accepted: int
    """Gateways reported."""
    loads: Mapping[str, int]
    """Gateway id -> flows other reporters pin to it now (least-loaded pools only)."""


def others_pinned(heard: Iterable[Heard], reporter_id: str, now: dt.datetime) -> int:
    """Pure: the flows pinned to a gateway by every fresh reporter but `reporter_id`."""
    return sum(
        h.figures.pinned
        for h in heard
        if h.host_id != reporter_id and now - h.reported_at <= STALE_AFTER
    )


def report(tx: Tx, host_ref: str, items: Iterable[GatewayFigures]) -> ReportAnswer:
    """What the agent of `host_ref` says of the gateways it probes or serves; answered with
    the other senders' load on the least-loaded pools among them (the module's last rule)."""
    if tx.actor.kind is not PrincipalKind.HOST:
        raise ForbiddenError("only a host's agent reports on edge gateways")
    host = hosts.get(tx, host_ref)
    r = tables.gateway_reports
    seen: set[str] = set()
    balanced: set[str] = set()
    for item in items:
        if item.gateway_id in seen:
            raise InvalidInputError("gateway", f"{item.gateway_id!r} is reported twice")
        seen.add(item.gateway_id)
        gateway = _gateway(tx, item.gateway_id)
        pool = edge_pools.get(tx, gateway.pool_id)  # one this host sends through or serves, or 404
        if pool.choice is Choice.LEAST_LOADED:
            balanced.add(pool.id)
        values = {
            "alive": item.alive,
            "pinned": item.pinned,
            "flows": item.flows,
            "packets": item.packets,
            "bytes": item.bytes,
            "reported_at": tx.now,
        }
        key = (r.c.gateway_id == gateway.id) & (r.c.host_id == host.id)
        if tx.connection.execute(select(r.c.host_id).where(key)).first() is None:
            tx.connection.execute(
                insert(r).values(gateway_id=gateway.id, host_id=host.id, **values)
            )
        else:
            tx.connection.execute(update(r).where(key).values(**values))
        rule_counts.record(tx, host.id, gateway, item.rules, item.defaults)
    _settle(tx, seen)
    return ReportAnswer(len(seen), _loads(tx, balanced, host.id))


def _loads(tx: Tx, pool_ids: set[str], reporter_id: str) -> dict[str, int]:
    if not pool_ids:
        return {}
    g = tables.edge_gateways
    ids = tx.connection.execute(
        select(g.c.id).where(g.c.pool_id.in_(sorted(pool_ids))).order_by(g.c.id)
    ).scalars()
    gateway_ids = list(ids)
    heard = _heard(tx, gateway_ids)
    return {i: others_pinned(heard.get(i, ()), reporter_id, tx.now) for i in gateway_ids}


def expire(tx: Tx) -> int:
    """Judge every gateway again (reports go stale); how many changed."""
    return _settle(tx, None)


def view(tx: Tx, pool_ref: str, network_ref: str | None = None) -> list[GatewayHealth]:
    """The gateways of an edge pool with their health and traffic (the pool's tenant or an
    admin; hosts only report)."""
    access.require_not_host(tx.actor, "read gateway health")
    pool = edge_pools.get(tx, pool_ref, network_ref)
    g = tables.edge_gateways
    rows = tx.connection.execute(select(g).where(g.c.pool_id == pool.id).order_by(g.c.name)).all()
    heard = _heard(tx, [row.id for row in rows])
    names = _host_names(tx, {row.host_id for row in rows})
    found = []
    for row in rows:
        mine = heard.get(row.id, ())
        fresh = [h for h in mine if tx.now - h.reported_at <= STALE_AFTER]
        found.append(
            GatewayHealth(
                edge_pools.gateway_from_row(row),
                names.get(row.host_id, row.host_id),
                Health(row.health),
                row.health_since,
                row.health_why or "",
                mine,
                sum(h.figures.pinned for h in fresh),
                sum(h.figures.flows for h in mine),
                sum(h.figures.packets for h in mine),
                sum(h.figures.bytes for h in mine),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class PoolCount:
    tenant: str
    network: str
    pool: str
    up: int
    gateways: int
    active: int


def counts(tx: Tx) -> list[PoolCount]:
    """Per edge pool: gateways up, all of them, and the active ones (the manager's metrics)."""
    e, g, n, t = tables.edge_pools, tables.edge_gateways, tables.networks, tables.tenants
    rows = tx.connection.execute(
        select(t.c.name, n.c.name, e.c.name, e.c.id)
        .select_from(e.join(n, e.c.network_id == n.c.id).join(t, n.c.tenant_id == t.c.id))
        .order_by(t.c.name, n.c.name, e.c.name)
    ).all()
    gateways = tx.connection.execute(select(g.c.pool_id, g.c.health, g.c.state)).all()
    found = []
    for tenant, network, name, pool_id in rows:
        mine = [(health, state) for p, health, state in gateways if p == pool_id]
        up = sum(1 for health, _ in mine if health == Health.UP.value)
        active = sum(1 for _, state in mine if state == GatewayState.ACTIVE.value)
        found.append(PoolCount(tenant, network, name, up, len(mine), active))
    return found


# --- helpers --------------------------------------------------------------------------------


def _gateway(tx: Tx, gateway_id: str) -> Gateway:
    g = tables.edge_gateways
    row = tx.connection.execute(select(g).where(g.c.id == gateway_id)).first()
    if row is None:
        raise NotFoundError(f"no edge gateway {gateway_id!r}")
    return edge_pools.gateway_from_row(row)


def _host_names(tx: Tx, ids: Iterable[str]) -> dict[str, str]:
    h = tables.hosts
    rows = tx.connection.execute(select(h.c.id, h.c.name).where(h.c.id.in_(list(ids))))
    return {row.id: row.name for row in rows}


def _heard(tx: Tx, gateway_ids: Iterable[str] | None) -> dict[str, tuple[Heard, ...]]:
    r, h = tables.gateway_reports, tables.hosts
    query = select(r, h.c.name).select_from(r.join(h, r.c.host_id == h.c.id))
    if gateway_ids is not None:
        query = query.where(r.c.gateway_id.in_(list(gateway_ids)))
    found: dict[str, list[Heard]] = {}
    for row in tx.connection.execute(query.order_by(h.c.name)):
        figures = GatewayFigures(
            row.gateway_id, row.alive, row.pinned, row.flows, row.packets, row.bytes
        )
        found.setdefault(row.gateway_id, []).append(
            Heard(row.host_id, row.name, figures, row.reported_at)
        )
    return {k: tuple(v) for k, v in found.items()}


def _settle(tx: Tx, gateway_ids: set[str] | None) -> int:
    """Judge the gateways (all when None); store and record what changed; how many did."""
    g = tables.edge_gateways
    query = select(g)
    if gateway_ids is not None:
        query = query.where(g.c.id.in_(sorted(gateway_ids)))
    rows = tx.connection.execute(query).all()
    if not rows:
        return 0
    heard = _heard(tx, None if gateway_ids is None else [row.id for row in rows])
    changed = 0
    pools: dict[str, EdgePool] = {}
    for row in rows:
        gateway = edge_pools.gateway_from_row(row)
        verdict = judge(gateway, heard.get(gateway.id, ()), tx.now)
        before = Health(row.health)
        if verdict.health is before and (row.health_why or "") == verdict.why:
            continue
        values: dict[str, object] = {"health_why": verdict.why[:200]}
        if verdict.health is not before:
            values |= {"health": verdict.health.value, "health_since": tx.now}
        tx.connection.execute(update(g).where(g.c.id == gateway.id).values(**values))
        if verdict.health is before:
            continue
        changed += 1
        if verdict.health in EVENTS:
            pool = pools.get(gateway.pool_id) or edge_pools.from_row(
                tx.connection.execute(
                    select(tables.edge_pools).where(tables.edge_pools.c.id == gateway.pool_id)
                ).one()
            )
            pools[pool.id] = pool
            moves = Health.DOWN in (before, verdict.health) and edge_rows.public_ips_of(
                tx, [pool.id]
            )
            # A public IP's holder is never a gateway judged down (compiler.public_ip_owner):
            # its pool's hosts get snapshots where a survivor holds its addresses, or it again.
            _record(
                tx,
                pool,
                gateway,
                before,
                verdict,
                edge_pools.affected(tx, pool) if moves else set(),
            )
    return changed


def _record(
    tx: Tx,
    pool: EdgePool,
    gateway: Gateway,
    before: Health,
    verdict: Verdict,
    hosts_affected: set[str],
) -> None:
    n = tables.networks
    network = networks.from_row(
        tx.connection.execute(select(n).where(n.c.id == pool.network_id)).one()
    )
    tx.record(
        EVENTS[verdict.health],
        gateway.id,
        network.tenant_id,
        {
            "pool": pool.name,
            "network": network.name,
            "gateway": gateway.name,
            "host": _host_names(tx, [gateway.host_id]).get(gateway.host_id, gateway.host_id),
            "from": before.value,
            "to": verdict.health.value,
            "why": verdict.why,
            "said_by": list(verdict.said_by),
        },
        hosts_affected,
    )
