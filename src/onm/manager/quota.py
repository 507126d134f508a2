"""Per-tenant object quotas: how many networks and nodes one tenant may hold.

Checked inside the write transaction that would add the object, so two concurrent creates
cannot both slip past the limit (the store serialises writers). A refusal is a 403
`quota_exceeded` naming the quota and its limit, as Kubernetes answers for a ResourceQuota;
admins are held to a tenant's quota too, since it bounds what the tenant holds, not who asks.
Hosts and tenants are made by admins only and have no quota.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from onm.errors import InvalidInputError, QuotaExceededError
from onm.manager import tables
from onm.manager.store import Tx


@dataclass(frozen=True, slots=True)
class Quotas:
    networks: int = 100
    """Networks per tenant (`onm manager serve --quota-networks`)."""
    nodes: int = 1000
    """Nodes per tenant, over all its networks (`--quota-nodes`)."""

    def __post_init__(self) -> None:
        for name in ("networks", "nodes"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"quota-{name}", "must be 0 or more")


DEFAULT = Quotas()


def networks_of(tx: Tx, tenant_id: str) -> int:
    n = tables.networks
    query = select(func.count()).select_from(n).where(n.c.tenant_id == tenant_id)
    return int(tx.connection.execute(query).scalar_one())


def nodes_of(tx: Tx, tenant_id: str) -> int:
    n, net = tables.nodes, tables.networks
    query = (
        select(func.count())
        .select_from(n.join(net, n.c.network_id == net.c.id))
        .where(net.c.tenant_id == tenant_id)
    )
    return int(tx.connection.execute(query).scalar_one())


def _refuse(tx: Tx, kind: str, limit: int, tenant_id: str) -> QuotaExceededError:
    t = tables.tenants
    name = tx.connection.execute(select(t.c.name).where(t.c.id == tenant_id)).scalar_one()
    return QuotaExceededError(
        kind,
        limit,
        f"quota exceeded: tenant {name!r} may hold {limit} {kind} "
        f"(quota `{kind}`, set by the manager's --quota-{kind})",
    )


def check_networks(tx: Tx, tenant_id: str, quotas: Quotas) -> None:
    """Refuse one more network for the tenant if it holds its quota already."""
    if networks_of(tx, tenant_id) >= quotas.networks:
        raise _refuse(tx, "networks", quotas.networks, tenant_id)


def check_nodes(tx: Tx, tenant_id: str, quotas: Quotas) -> None:
    """Refuse one more node for the tenant if it holds its quota already."""
    if nodes_of(tx, tenant_id) >= quotas.nodes:
        raise _refuse(tx, "nodes", quotas.nodes, tenant_id)


def objects_by_tenant(tx: Tx) -> dict[str, tuple[int, int]]:
    """Tenant name -> (networks, nodes) it holds, for the metrics."""
    t, net, n = tables.tenants, tables.networks, tables.nodes
    counts = {name: (0, 0) for (name,) in tx.connection.execute(select(t.c.name))}
    networks = select(t.c.name, func.count(net.c.id)).select_from(
        t.join(net, net.c.tenant_id == t.c.id)
    )
    for name, count in tx.connection.execute(networks.group_by(t.c.name)):
        counts[name] = (int(count), 0)
    nodes = select(t.c.name, func.count(n.c.id)).select_from(
        t.join(net, net.c.tenant_id == t.c.id).join(n, n.c.network_id == net.c.id)
    )
    for name, count in tx.connection.execute(nodes.group_by(t.c.name)):
        counts[name] = (counts[name][0], int(count))
    return counts
