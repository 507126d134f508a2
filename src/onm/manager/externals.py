"""External networks (seed 1): IPv4 networks outside the overlay that edge hosts have an
interface on. The operator's objects: an admin creates and deletes them; anyone but a host
token may read them (a tenant needs their names and CIDRs to ask for public IPs)."""

from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select

from onm.api.codec import decode
from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, tables
from onm.manager.store import Tx
from onm.model import validate
from onm.model.edge_pool import ExternalNetwork
from onm.model.ids import ExternalId, new_id


def from_row(row: tables.Row) -> ExternalNetwork:
    return decode(ExternalNetwork, row)


def create(tx: Tx, name: str, cidr: str) -> ExternalNetwork:
    access.require_admin(tx.actor, "create external networks")
    validate.name("name", name)
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as error:
        raise InvalidInputError("cidr", f"{cidr!r} is not an IPv4 CIDR: {error}") from None
    if network.prefixlen > 30:
        raise InvalidInputError("cidr", f"{network} is too small for gateways (at most /30)")
    x = tables.external_networks
    if tx.connection.execute(select(x.c.id).where(x.c.name == name)).first():
        raise ConflictError("name", f"an external network named {name!r} exists")
    found = ExternalNetwork(ExternalId(new_id("external")), name, network, tx.now)
    tx.connection.execute(
        insert(x).values(id=found.id, name=name, cidr=str(network), created_at=tx.now)
    )
    tx.record("external.created", found.id, None, {"name": name, "cidr": str(network)})
    return found


def get(tx: Tx, ref: str) -> ExternalNetwork:
    x = tables.external_networks
    row = tx.connection.execute(select(x).where((x.c.id == ref) | (x.c.name == ref))).first()
    if row is None:
        raise NotFoundError(f"no external network {ref!r}")
    return from_row(row)


def list_all(tx: Tx) -> list[ExternalNetwork]:
    access.require_not_host(tx.actor, "list external networks")
    x = tables.external_networks
    return [from_row(r) for r in tx.connection.execute(select(x).order_by(x.c.name))]


def delete_external(tx: Tx, ref: str) -> ExternalNetwork:
    access.require_admin(tx.actor, "delete external networks")
    found = get(tx, ref)
    h = tables.hosts
    user = tx.connection.execute(select(h.c.name).where(h.c.external_id == found.id)).first()
    if user is not None:
        raise ConflictError("external", f"host {user.name!r} is on external network {found.name!r}")
    x = tables.external_networks
    tx.connection.execute(delete(x).where(x.c.id == found.id))
    tx.record("external.deleted", found.id, None, {"name": found.name})
    return found
