"""Reading edge pools' firewall rules and public IPs from the store, and the public IPs' views
(node, owner gateway) a pool's detail shows: the rows only, no access checks (callers have
theirs), so `edge_pools`, `edge_rules`, `public_ips` and `reads` all share them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from onm.api.codec import decode
from onm.manager import tables
from onm.manager.compiler import public_ip_owner
from onm.manager.store import Tx
from onm.model import HostId, Node
from onm.model.edge_pool import Gateway
from onm.model.edge_rule import EdgeRule, NodePublicIp
from onm.model.ids import ExternalId, GatewayId
from onm.model.pool import Health


@dataclass(frozen=True, slots=True)
class PublicIpDetail:
    """A public IP as users see it: with its node and the gateway that holds it."""

    public_ip: NodePublicIp
    node: Node
    pool_name: str
    owner: Gateway | None


def rule_from_row(row: tables.Row) -> EdgeRule:
    return decode(EdgeRule, row)


def public_ip_from_row(row: tables.Row) -> NodePublicIp:
    return decode(NodePublicIp, row)


def rules_of(tx: Tx, pool_ids: Iterable[str]) -> list[EdgeRule]:
    """The rules of these pools, each pool's in evaluation order."""
    r = tables.edge_rules
    query = select(r).where(r.c.pool_id.in_(sorted(pool_ids))).order_by(r.c.pool_id, r.c.position)
    return [rule_from_row(row) for row in tx.connection.execute(query)]


def public_ips_of(
    tx: Tx, pool_ids: Iterable[str] | None = None, node_id: str | None = None
) -> list[NodePublicIp]:
    """The public IPs of these pools (or of one node), by address."""
    p = tables.public_ips
    query = select(p)
    if pool_ids is not None:
        query = query.where(p.c.pool_id.in_(sorted(pool_ids)))
    if node_id is not None:
        query = query.where(p.c.node_id == node_id)
    rows = tx.connection.execute(query).all()
    return sorted((public_ip_from_row(row) for row in rows), key=lambda p: p.ip)


def taken_on(tx: Tx, external_id: str, ip: ipaddress.IPv4Address) -> str | None:
    """What already uses `ip` on an external network, in words (None: free)."""
    g, h, n = tables.edge_gateways, tables.hosts, tables.nodes
    gateway = tx.connection.execute(
        select(g.c.name)
        .join(h, h.c.id == g.c.host_id)
        .where(g.c.external_ip == str(ip), h.c.external_id == external_id)
    ).first()
    if gateway is not None:
        return f"gateway {gateway.name!r}'s external address"
    p = tables.public_ips
    public = tx.connection.execute(
        select(n.c.name)
        .join(p, p.c.node_id == n.c.id)
        .where(p.c.external_id == external_id, p.c.ip == str(ip))
    ).first()
    if public is not None:
        return f"node {public.name!r}'s public IP"
    return None


def down_gateways(tx: Tx, gateway_ids: list[GatewayId] | None) -> frozenset[GatewayId]:
    """The gateways (of `gateway_ids`, or all) the manager judges down: they hold no public IP
    (`compiler.public_ip_owner`)."""
    g = tables.edge_gateways
    query = select(g.c.id).where(g.c.health == Health.DOWN.value)
    if gateway_ids is not None:
        query = query.where(g.c.id.in_(sorted(gateway_ids)))
    return frozenset(GatewayId(i) for (i,) in tx.connection.execute(query))


def details(
    tx: Tx, public: Iterable[NodePublicIp], gateways: Iterable[Gateway]
) -> list[PublicIpDetail]:
    """Each public IP with its node and owner (`gateways`: those of the public IPs' pools)."""
    found = list(public)
    known = list(gateways)
    n, h, e = tables.nodes, tables.hosts, tables.edge_pools
    pool_rows = tx.connection.execute(
        select(e.c.id, e.c.name).where(e.c.id.in_(sorted({p.pool_id for p in found})))
    )
    pools = {row.id: str(row.name) for row in pool_rows}
    node_rows = tx.connection.execute(select(n).where(n.c.id.in_(sorted(p.node_id for p in found))))
    nodes = {row.id: decode(Node, row) for row in node_rows}
    host_rows = tx.connection.execute(
        select(h.c.id, h.c.external_id).where(h.c.id.in_(sorted({g.host_id for g in known})))
    )
    externals = {
        HostId(row.id): None if row.external_id is None else ExternalId(row.external_id)
        for row in host_rows
    }
    by_id = {g.id: g for g in known}
    down = down_gateways(tx, list(by_id))
    out = []
    for p in found:
        owner = public_ip_owner(p, known, externals, down)
        holder = None if owner is None else by_id[owner]
        out.append(PublicIpDetail(p, nodes[p.node_id], pools[p.pool_id], holder))
    return out
