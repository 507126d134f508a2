"""Per-tenant object quotas: how many networks and nodes one tenant may hold.

Each quota's limit is the tenant's own when an admin set one (`tenants.set_quotas`, stored in
the tenants table's nullable `quota_*` columns), else the manager's default (`Quotas`, from
`onm manager serve --quota-networks/--quota-nodes`). Checked inside the write transaction that
would add the object, so two concurrent creates cannot both slip past the limit (the store
serialises writers). A refusal is a 403 `quota_exceeded` naming the tenant, the quota, its
limit and where the limit comes from, as Kubernetes answers for a ResourceQuota; admins are held
to a tenant's quota too, since it bounds what the tenant holds, not who asks. A limit below the
current use is allowed: existing objects stay, new ones are refused. Hosts and tenants are made
by admins only and have no quota.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Select, func, select

from onm.errors import QuotaExceededError
from onm.manager import tables
from onm.manager.store import Tx
from onm.model.tenant import QuotaKind, QuotaOverrides, QuotaUse, check_quota


@dataclass(frozen=True, slots=True)
class Quotas:
    """The manager's defaults, for every tenant without a limit of its own."""

    networks: int = 100
    """Networks per tenant (`onm manager serve --quota-networks`)."""
    nodes: int = 1000
    """Nodes per tenant, over all its networks (`--quota-nodes`)."""

    def __post_init__(self) -> None:
        for kind in QuotaKind:
            check_quota(f"quota-{kind}", self.of(kind))

    def of(self, kind: QuotaKind) -> int:
        value: int = getattr(self, kind.value)
        return value


DEFAULT = Quotas()

# The tenants table's column holding each quota's own limit (NULL: the default).
COLUMNS: dict[QuotaKind, Column[int]] = {
    QuotaKind.NETWORKS: tables.tenants.c.quota_networks,
    QuotaKind.NODES: tables.tenants.c.quota_nodes,
}


def overrides(row: tables.Row) -> QuotaOverrides:
    """The tenant's own limits, from its tenants row."""
    return QuotaOverrides(
        **{kind.value: getattr(row, column.name) for kind, column in COLUMNS.items()}
    )


def _count_networks(tenant_id: str) -> Select[int]:
    n = tables.networks
    return select(func.count()).select_from(n).where(n.c.tenant_id == tenant_id)


def _count_nodes(tenant_id: str) -> Select[int]:
    n, net = tables.nodes, tables.networks
    return (
        select(func.count())
        .select_from(n.join(net, n.c.network_id == net.c.id))
        .where(net.c.tenant_id == tenant_id)
    )


# How to count what a tenant holds, per quota.
COUNTS: dict[QuotaKind, Callable[[str], Select[int]]] = {
    QuotaKind.NETWORKS: _count_networks,
    QuotaKind.NODES: _count_nodes,
}


def used(tx: Tx, tenant_id: str, kind: QuotaKind) -> int:
    return int(tx.connection.execute(COUNTS[kind](tenant_id)).scalar_one())


def networks_of(tx: Tx, tenant_id: str) -> int:
    return used(tx, tenant_id, QuotaKind.NETWORKS)


def nodes_of(tx: Tx, tenant_id: str) -> int:
    return used(tx, tenant_id, QuotaKind.NODES)


def resolve(own: QuotaOverrides, defaults: Quotas, kind: QuotaKind) -> tuple[int, bool]:
    """The limit that applies and whether it is the tenant's own (else the default)."""
    limit = own.of(kind)
    return (defaults.of(kind), False) if limit is None else (limit, True)


def usage(tx: Tx, tenant_id: str, own: QuotaOverrides, defaults: Quotas) -> tuple[QuotaUse, ...]:
    """Each quota of the tenant as it stands, in QuotaKind order."""
    found = []
    for kind in QuotaKind:
        limit, is_own = resolve(own, defaults, kind)
        found.append(QuotaUse(kind, limit, is_own, used(tx, tenant_id, kind)))
    return tuple(found)


def _check(tx: Tx, tenant_id: str, kind: QuotaKind, defaults: Quotas) -> None:
    t = tables.tenants
    row = tx.connection.execute(select(t).where(t.c.id == tenant_id)).one()
    limit, own = resolve(overrides(row), defaults, kind)
    if used(tx, tenant_id, kind) < limit:
        return
    source = (
        "set for this tenant by `onm tenant set`" if own else f"set by the manager's --quota-{kind}"
    )
    raise QuotaExceededError(
        kind.value,
        limit,
        f"quota exceeded: tenant {row.name!r} may hold {limit} {kind} (quota `{kind}`, {source})",
    )


def check_networks(tx: Tx, tenant_id: str, quotas: Quotas) -> None:
    """Refuse one more network for the tenant if it holds its quota already."""
    _check(tx, tenant_id, QuotaKind.NETWORKS, quotas)


def check_nodes(tx: Tx, tenant_id: str, quotas: Quotas) -> None:
    """Refuse one more node for the tenant if it holds its quota already."""
    _check(tx, tenant_id, QuotaKind.NODES, quotas)


def _per_tenant(tx: Tx, query: Select[str, int]) -> dict[str, int]:
    return {tenant_id: int(count) for tenant_id, count in tx.connection.execute(query)}


def usage_by_tenant(tx: Tx, defaults: Quotas) -> dict[str, tuple[QuotaUse, ...]]:
    """Tenant name -> each of its quotas as it stands, for the metrics (one query per quota)."""
    t, net, n = tables.tenants, tables.networks, tables.nodes
    held = {
        QuotaKind.NETWORKS: _per_tenant(
            tx, select(net.c.tenant_id, func.count(net.c.id)).group_by(net.c.tenant_id)
        ),
        QuotaKind.NODES: _per_tenant(
            tx,
            select(net.c.tenant_id, func.count(n.c.id))
            .select_from(net.join(n, n.c.network_id == net.c.id))
            .group_by(net.c.tenant_id),
        ),
    }
    found = {}
    for row in tx.connection.execute(select(t)):
        own = overrides(row)
        quotas = []
        for kind in QuotaKind:
            limit, is_own = resolve(own, defaults, kind)
            quotas.append(QuotaUse(kind, limit, is_own, held[kind].get(row.id, 0)))
        found[row.name] = tuple(quotas)
    return found
