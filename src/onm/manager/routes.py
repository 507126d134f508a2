"""Routes (seed 1; DESIGN.md section 5): a network's external prefixes and the edge pool each
goes through. A route's prefix may not lie inside the network's own CIDRs (those stay inside
the overlay, which also wins over any route that contains them, as 0.0.0.0/0 does), nor overlap
another route of the network (an external address has one way out), and its edge pool must be
one of the network's own."""

from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select

from onm.api.codec import decode
from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, edge_pools, networks, tables
from onm.manager.store import Tx
from onm.model.edge_pool import Route
from onm.model.ids import RouteId, new_id


def from_row(row: tables.Row) -> Route:
    return decode(Route, row)


def _prefix(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise InvalidInputError("prefix", f"{value!r} is not an IPv4 CIDR: {error}") from None


def routes_of(tx: Tx, network_id: str) -> list[Route]:
    r = tables.routes
    rows = tx.connection.execute(select(r).where(r.c.network_id == network_id).order_by(r.c.prefix))
    return [from_row(row) for row in rows]


def add(tx: Tx, network_ref: str, prefix: str, edge_pool_ref: str) -> Route:
    access.require_not_host(tx.actor, "add routes")
    network = networks.get(tx, network_ref)
    wanted = _prefix(prefix)
    own = next((c for c in network.cidrs if wanted.subnet_of(c)), None)
    if own is not None:  # a supernet (0.0.0.0/0) is fine: the network's own CIDRs stay inside
        raise InvalidInputError(
            "prefix", f"{wanted} is inside network {network.name!r}'s own CIDR {own}"
        )
    clash = next((r for r in routes_of(tx, network.id) if r.prefix.overlaps(wanted)), None)
    if clash is not None:
        raise ConflictError("prefix", f"{wanted} overlaps the network's route {clash.prefix}")
    try:
        pool = edge_pools.get(tx, edge_pool_ref, network.id)
    except NotFoundError:
        raise InvalidInputError(
            "edge_pool", f"no edge pool {edge_pool_ref!r} in network {network.name!r}"
        ) from None
    route = Route(RouteId(new_id("route")), network.id, wanted, pool.id, tx.now)
    tx.connection.execute(
        insert(tables.routes).values(
            id=route.id,
            network_id=network.id,
            prefix=str(wanted),
            edge_pool_id=pool.id,
            created_at=tx.now,
        )
    )
    tx.record(
        "route.added",
        route.id,
        network.tenant_id,
        {"network": network.name, "prefix": str(wanted), "edge_pool": pool.name},
        networks.hosts_of(tx, network.id),
    )
    return route


def list_all(tx: Tx, network_ref: str) -> list[Route]:
    return routes_of(tx, networks.get(tx, network_ref).id)


def remove(tx: Tx, network_ref: str, prefix: str) -> Route:
    access.require_not_host(tx.actor, "delete routes")
    network = networks.get(tx, network_ref)
    wanted = _prefix(prefix)
    found = next((r for r in routes_of(tx, network.id) if r.prefix == wanted), None)
    if found is None:
        raise NotFoundError(f"network {network.name!r} has no route {wanted}")
    tx.connection.execute(delete(tables.routes).where(tables.routes.c.id == found.id))
    tx.record(
        "route.deleted",
        found.id,
        network.tenant_id,
        {"network": network.name, "prefix": str(wanted)},
        networks.hosts_of(tx, network.id),
    )
    return found
