"""The database side of the compiler: load the intent a host's snapshot compiles from.

`onm.manager.compiler` is pure; this module is the I/O in front of it. It reads only what one
host needs (its networks, their nodes and hosts, its grants), or everything (`intent`, for
comparing whole compilations), and serves the two use cases agents call: the snapshot and the
cheap desired revision their long polls wait on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import ColumnElement, select, true

from onm.manager import (
    access,
    compiler,
    edge_pools,
    edge_rows,
    hosts,
    networks,
    nodes,
    pools,
    routes,
    tables,
)
from onm.manager.compiler import Intent
from onm.manager.store import Tx
from onm.model import Grant, Host, HostId, NetworkId, Node, NodeId
from onm.model.ids import PoolId
from onm.model.snapshot import HostSnapshot


def snapshot(tx: Tx, host_ref: str) -> HostSnapshot:
    """What `host_ref`'s agent needs; for admins and that host only (it holds every tenant's)."""
    access.require_not_tenant(tx.actor, "read host snapshots")
    host = hosts.get(tx, host_ref)
    return compiler.compile_host(intent_for_host(tx, host), host.id, tx.current_revision(), tx.now)


def desired_revision(tx: Tx, host_ref: str) -> int:
    """The revision of the last change to this host's snapshot (cheap: for long polls)."""
    access.require_not_tenant(tx.actor, "read host snapshots")
    host = hosts.get(tx, host_ref)
    value = tx.connection.execute(
        select(tables.hosts.c.desired_revision).where(tables.hosts.c.id == host.id)
    ).scalar_one()
    return int(value)


def intent_for_host(tx: Tx, host: Host) -> Intent:
    """The part of the intent `host`'s snapshot depends on (no access check: callers do)."""
    n, g = tables.nodes, tables.grants
    c = tx.connection
    granted = _grants(tx, g.c.host_id == host.id)
    e, gw = tables.edge_pools, tables.edge_gateways
    served = {
        NetworkId(i)
        for (i,) in c.execute(
            select(e.c.network_id).join(gw, gw.c.pool_id == e.c.id).where(gw.c.host_id == host.id)
        )
    }
    network_ids = (
        {NetworkId(i) for (i,) in c.execute(select(n.c.network_id).where(n.c.host_id == host.id))}
        | {grant.network_id for grant in granted}
        | served
    )
    members = _nodes(tx, list(network_ids))
    edge_list = [
        edge_pools.from_row(row)
        for row in c.execute(select(e).where(e.c.network_id.in_(sorted(network_ids))))
    ]
    gateway_list = [
        edge_pools.gateway_from_row(row)
        for row in c.execute(select(gw).where(gw.c.pool_id.in_([p.id for p in edge_list])))
    ]
    r = tables.routes
    route_list = [
        routes.from_row(row)
        for row in c.execute(select(r).where(r.c.network_id.in_(sorted(network_ids))))
    ]
    p = tables.pools
    pool_list = [
        pools.from_row(row)
        for row in tx.connection.execute(select(p).where(p.c.network_id.in_(sorted(network_ids))))
    ]
    pool_members = pools.members_of(tx, [pool.id for pool in pool_list])
    host_ids = {node.host_id for node in members} | {g.host_id for g in gateway_list}
    host_ids -= {host.id}
    h = tables.hosts
    others = [
        hosts.from_row(row)
        for row in tx.connection.execute(select(h).where(h.c.id.in_(sorted(host_ids))))
    ]
    net = tables.networks
    return Intent(
        hosts=(host, *others),
        networks=tuple(
            networks.from_row(row)
            for row in tx.connection.execute(select(net).where(net.c.id.in_(sorted(network_ids))))
        ),
        nodes=tuple(members),
        grants=tuple(granted),
        pools=tuple(pool_list),
        members=tuple(pool_members),
        edge_pools=tuple(edge_list),
        gateways=tuple(gateway_list),
        routes=tuple(route_list),
        rules=tuple(edge_rows.rules_of(tx, [p.id for p in edge_list])),
        public_ips=tuple(edge_rows.public_ips_of(tx, [p.id for p in edge_list])),
        down_gateways=edge_rows.down_gateways(tx, [g.id for g in gateway_list]),
    )


def intent(tx: Tx) -> Intent:
    """The whole intent: every host, network, node and unexpired grant."""
    c = tx.connection
    return Intent(
        hosts=tuple(hosts.from_row(row) for row in c.execute(select(tables.hosts))),
        networks=tuple(networks.from_row(row) for row in c.execute(select(tables.networks))),
        nodes=tuple(nodes.from_row(row) for row in c.execute(select(tables.nodes))),
        grants=tuple(_grants(tx, true())),
        pools=tuple(pools.from_row(row) for row in c.execute(select(tables.pools))),
        members=tuple(pools.member_from_row(row) for row in c.execute(select(tables.pool_members))),
        edge_pools=tuple(edge_pools.from_row(row) for row in c.execute(select(tables.edge_pools))),
        gateways=tuple(
            edge_pools.gateway_from_row(row) for row in c.execute(select(tables.edge_gateways))
        ),
        routes=tuple(routes.from_row(row) for row in c.execute(select(tables.routes))),
        rules=tuple(edge_rows.rule_from_row(row) for row in c.execute(select(tables.edge_rules))),
        public_ips=tuple(edge_rows.public_ips_of(tx)),
        down_gateways=edge_rows.down_gateways(tx, None),
    )


def _nodes(tx: Tx, network_ids: Iterable[str]) -> list[Node]:
    n = tables.nodes
    query = select(n).where(n.c.network_id.in_(sorted(network_ids)))
    return [nodes.from_row(row) for row in tx.connection.execute(query)]


def _grants(tx: Tx, where: ColumnElement[bool]) -> list[Grant]:
    """Unexpired grants matching `where` (a SQL condition)."""
    g = tables.grants
    rows = tx.connection.execute(select(g).where(where, g.c.expires_at > tx.now))
    return [
        Grant(
            NetworkId(row.network_id),
            HostId(row.host_id),
            NodeId(row.requester_id),
            ipaddress.IPv4Address(row.target_ip),
            NodeId(row.target_id),
            row.expires_at,
            None if row.pool_id is None else PoolId(row.pool_id),
            tuple(NodeId(n) for n in row.ranking or ()),
        )
        for row in rows
    ]
