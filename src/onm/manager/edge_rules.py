"""An edge pool's firewall rules (issue #10; seed 1; `onm.model.edge_rule`).

- Rules are the tenant's, like the pool: whoever may change the pool adds and deletes them;
  whoever may see it reads them (a host token changes none).
- A pool's rules have positions 1..N, evaluated in that order. A new rule goes last, or at the
  position given (1..N+1), moving the rules from there on down by one; deleting one moves the
  ones after it up, so the positions stay 1..N and a rule's id stays what names it.
- At most `MAX_RULES` per pool, so the gateways' rulesets stay small.
- Every change is one transaction, refused whole; the hosts of the pool's gateways (the only
  ones that get the rules) are marked.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import delete, func, insert, select, update

from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, edge_pools, edge_rows, networks, rule_counts, tables
from onm.manager.store import Tx
from onm.model.edge_pool import EdgePool
from onm.model.edge_rule import CountedRule, EdgeRule, parse_rule, ports_text
from onm.model.ids import RuleId, new_id

MAX_RULES: Final = 256


def _gateway_hosts(tx: Tx, pool: EdgePool) -> set[str]:
    return {g.host_id for g in edge_pools.gateways_of(tx, pool.id)}


def _count(tx: Tx, pool_id: str) -> int:
    r = tables.edge_rules
    return int(
        tx.connection.execute(select(func.count()).where(r.c.pool_id == pool_id)).scalar_one()
    )


def add(
    tx: Tx,
    pool_ref: str,
    direction: str,
    action: str,
    proto: str = "any",
    ports: str | None = None,
    remote: str | None = None,
    position: int | None = None,
) -> EdgeRule:
    """A new rule of `pool_ref` (see the module's rules)."""
    access.require_not_host(tx.actor, "add firewall rules")
    spec = parse_rule(direction, action, proto, ports, remote)
    pool = edge_pools.get(tx, pool_ref)
    count = _count(tx, pool.id)
    if count >= MAX_RULES:
        raise ConflictError("position", f"edge pool {pool.name!r} has {MAX_RULES} rules already")
    at = count + 1 if position is None else position
    if isinstance(at, bool) or not 1 <= at <= count + 1:
        raise InvalidInputError("position", f"{position!r} is outside 1..{count + 1}")
    r = tables.edge_rules
    if at <= count:
        tx.connection.execute(
            update(r)
            .where(r.c.pool_id == pool.id, r.c.position >= at)
            .values(position=r.c.position + 1)
        )
    rule = EdgeRule(
        RuleId(new_id("rule")),
        pool.id,
        at,
        spec.direction,
        spec.proto,
        spec.ports,
        spec.remote,
        spec.action,
        tx.now,
    )
    tx.connection.execute(
        insert(r).values(
            id=rule.id,
            pool_id=pool.id,
            position=at,
            direction=rule.direction.value,
            proto=rule.proto.value,
            ports=None if rule.ports is None else list(rule.ports),
            remote=None if rule.remote is None else str(rule.remote),
            action=rule.action.value,
            created_at=tx.now,
        )
    )
    network = networks.get(tx, pool.network_id)
    tx.record(
        "edge_rule.added",
        rule.id,
        network.tenant_id,
        {"pool": pool.name, "network": network.name, **describe(rule)},
        _gateway_hosts(tx, pool),
    )
    return rule


def describe(rule: EdgeRule) -> dict[str, object]:
    """A rule's fields as an event (and a log line) shows them."""
    return {
        "position": rule.position,
        "direction": rule.direction.value,
        "proto": rule.proto.value,
        "ports": ports_text(rule.ports),
        "remote": "any" if rule.remote is None else str(rule.remote),
        "action": rule.action.value,
    }


def list_all(tx: Tx, pool_ref: str) -> list[CountedRule]:
    """The pool's rules in order, each with what it matched (`onm.manager.rule_counts`)."""
    return list(rule_counts.counted(tx, edge_rows.rules_of(tx, [edge_pools.get(tx, pool_ref).id])))


def remove(tx: Tx, pool_ref: str, rule_id: str) -> EdgeRule:
    access.require_not_host(tx.actor, "delete firewall rules")
    pool = edge_pools.get(tx, pool_ref)
    found = next((r for r in edge_rows.rules_of(tx, [pool.id]) if r.id == rule_id), None)
    if found is None:
        raise NotFoundError(f"edge pool {pool.name!r} has no rule {rule_id!r}")
    r = tables.edge_rules
    tx.connection.execute(delete(r).where(r.c.id == found.id))
    tx.connection.execute(
        update(r)
        .where(r.c.pool_id == pool.id, r.c.position > found.position)
        .values(position=r.c.position - 1)
    )
    network = networks.get(tx, pool.network_id)
    tx.record(
        "edge_rule.deleted",
        found.id,
        network.tenant_id,
        {"pool": pool.name, "network": network.name, **describe(found)},
        _gateway_hosts(tx, pool),
    )
    return found
