"""Nodes' public IPs on edge pools (issue #10; seed 1: inbound 1:1 NAT; `onm.model.edge_rule`).

- A public IP is the tenant's, like its node and pool: whoever may change both adds and removes
  it; a host token changes none.
- The node must be in the pool's network, and has at most one public IP per pool.
- The address is a host address (not the network or broadcast address) of the external network
  of one of the pool's gateways' hosts, and nothing else uses it there: no gateway's external
  address, no other public IP (the store also keeps one public IP per address and external).
  Addresses the manager does not know of (a server on the external network) are the
  operator's to keep out of the way.
- One of the pool's gateways holds it (`onm.selection.public_ip.owner`, shown in details).
- Every change is one transaction, refused whole; the pool's gateway hosts and the node's host
  are marked.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, edge_pools, edge_rows, externals, networks, nodes, tables
from onm.manager.store import Tx
from onm.model import Node, validate
from onm.model.edge_pool import EdgePool
from onm.model.edge_rule import NodePublicIp
from onm.model.ids import ExternalId, PublicIpId, new_id


def _pool_of(tx: Tx, node: Node, pool_ref: str) -> EdgePool:
    """`pool_ref` in the node's network; a visible pool of another network is named as such."""
    try:
        return edge_pools.get(tx, pool_ref, node.network_id)
    except NotFoundError:
        pass
    try:
        other = edge_pools.get(tx, pool_ref)
    except (NotFoundError, InvalidInputError):
        network = networks.get(tx, node.network_id)
        raise InvalidInputError(
            "edge_pool", f"no edge pool {pool_ref!r} in network {network.name!r}"
        ) from None
    raise InvalidInputError(
        "node", f"node {node.name!r} is not in edge pool {other.name!r}'s network"
    )


def _hosts(tx: Tx, pool: EdgePool, node: Node) -> set[str]:
    return {g.host_id for g in edge_pools.gateways_of(tx, pool.id)} | {node.host_id}


def add(tx: Tx, node_ref: str, pool_ref: str, ip: str) -> edge_rows.PublicIpDetail:
    access.require_not_host(tx.actor, "add public IPs")
    address = validate.ipv4("ip", ip)
    node = nodes.get(tx, node_ref)
    pool = _pool_of(tx, node, pool_ref)
    gateways = edge_pools.gateways_of(tx, pool.id)
    h = tables.hosts
    external_ids = sorted(
        {
            row.external_id
            for row in tx.connection.execute(
                select(h.c.external_id).where(h.c.id.in_(sorted({g.host_id for g in gateways})))
            )
            if row.external_id is not None
        }
    )
    if not external_ids:
        raise InvalidInputError(
            "edge_pool", f"edge pool {pool.name!r} has no gateways: no external network"
        )
    candidates = [externals.get(tx, i) for i in external_ids]
    external = next((x for x in candidates if address in x.cidr), None)
    if external is None or address in (
        external.cidr.network_address,
        external.cidr.broadcast_address,
    ):
        where = ", ".join(f"{x.name} {x.cidr}" for x in candidates)
        raise InvalidInputError(
            "ip", f"{address} is not a host address of edge pool {pool.name!r}'s external ({where})"
        )
    used = edge_rows.taken_on(tx, external.id, address)
    if used is not None:
        raise ConflictError("ip", f"{address} is {used} on {external.name!r}")
    p = tables.public_ips
    has = tx.connection.execute(
        select(p.c.ip).where(p.c.pool_id == pool.id, p.c.node_id == node.id)
    ).first()
    if has is not None:
        raise ConflictError(
            "node", f"node {node.name!r} has public IP {has.ip} on edge pool {pool.name!r}"
        )
    made = NodePublicIp(
        PublicIpId(new_id("public_ip")), pool.id, node.id, ExternalId(external.id), address, tx.now
    )
    tx.connection.execute(
        insert(p).values(
            id=made.id,
            pool_id=pool.id,
            node_id=node.id,
            external_id=external.id,
            ip=str(address),
            created_at=tx.now,
        )
    )
    network = networks.get(tx, node.network_id)
    tx.record(
        "public_ip.added",
        made.id,
        network.tenant_id,
        {"node": node.name, "pool": pool.name, "network": network.name, "ip": str(address)},
        _hosts(tx, pool, node),
    )
    [found] = edge_rows.details(tx, [made], gateways)
    return found


def list_of_node(tx: Tx, node_ref: str) -> list[edge_rows.PublicIpDetail]:
    """A node's public IPs, with the gateway that holds each."""
    node = nodes.get(tx, node_ref)
    public = edge_rows.public_ips_of(tx, node_id=node.id)
    g = tables.edge_gateways
    rows = tx.connection.execute(select(g).where(g.c.pool_id.in_({p.pool_id for p in public})))
    return edge_rows.details(tx, public, [edge_pools.gateway_from_row(row) for row in rows])


def remove(tx: Tx, node_ref: str, ip: str) -> NodePublicIp:
    access.require_not_host(tx.actor, "remove public IPs")
    address = validate.ipv4("ip", ip)
    node = nodes.get(tx, node_ref)
    found = next((p for p in edge_rows.public_ips_of(tx, node_id=node.id) if p.ip == address), None)
    if found is None:
        raise NotFoundError(f"node {node.name!r} has no public IP {address}")
    pool = edge_pools.get(tx, found.pool_id)
    tx.connection.execute(delete(tables.public_ips).where(tables.public_ips.c.id == found.id))
    network = networks.get(tx, node.network_id)
    tx.record(
        "public_ip.removed",
        found.id,
        network.tenant_id,
        {"node": node.name, "pool": pool.name, "network": network.name, "ip": str(address)},
        _hosts(tx, pool, node),
    )
    return found
