"""Hosts: each owns a /64 of the substrate, given or derived from its location (FIG. 2D).

Only admins create and delete hosts; tenants may read them (to place nodes), but not the
substrate: they see where a host is (its location), never its /64 (`shows_substrate`); a host
token sees only itself. Creating a host issues the token its agent uses.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from onm.addressing import HostPrefix, Location
from onm.api.codec import decode
from onm.errors import AddressingError, ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, externals, tables, tokens
from onm.manager.store import Tx
from onm.model import Host, HostId, HostStatus, PrincipalKind, validate
from onm.model.host import HostRole
from onm.model.ids import new_id


def from_row(row: tables.Row) -> Host:
    return decode(Host, row)


def by_ids(tx: Tx, ids: list[str]) -> list[Host]:
    """Hosts by id (no access check: callers have one)."""
    h = tables.hosts
    return [from_row(row) for row in tx.connection.execute(select(h).where(h.c.id.in_(ids)))]


def status_from_row(row: tables.Row) -> HostStatus:
    return HostStatus(from_row(row), row.desired_revision, row.applied_revision, row.last_report_at)


def _prefix(prefix: str | None, location: Location | None) -> HostPrefix:
    if prefix is None and location is None:
        raise InvalidInputError("prefix", "give a /64 prefix or a location")
    derived = None if location is None else HostPrefix(location)
    if prefix is None:
        assert derived is not None
        return derived
    try:
        given = HostPrefix.from_network(prefix)
    except AddressingError as exc:
        raise InvalidInputError("prefix", exc.reason) from None
    if derived is not None and given != derived:
        raise InvalidInputError("prefix", f"{given} does not match the location's prefix {derived}")
    return given


def create(
    tx: Tx,
    name: str,
    prefix: str | None = None,
    location: Location | None = None,
    role: str = HostRole.NODE.value,
    external: str | None = None,
) -> tuple[Host, str]:
    """A new host and its agent's token (shown once); an edge host names its external network."""
    access.require_admin(tx.actor, "create hosts")
    validate.name("name", name)
    try:
        chosen = HostRole(role)
    except ValueError:
        choices = ", ".join(r.value for r in HostRole)
        raise InvalidInputError("role", f"{role!r} is not one of {choices}") from None
    if (chosen is HostRole.EDGE) != (external is not None):
        raise InvalidInputError(
            "external", "an edge host names its external network (--external), a node host none"
        )
    external_id = None if external is None else externals.get(tx, external).id
    host = Host(
        HostId(new_id("host")), name, _prefix(prefix, location), tx.now, chosen, external_id
    )
    c = tables.hosts.c
    taken = tx.connection.execute(
        select(c.name, c.prefix).where((c.name == name) | (c.prefix == str(host.prefix)))
    ).first()
    if taken is not None:
        if taken.name == name:
            raise ConflictError("name", f"a host named {name!r} exists")
        raise ConflictError("prefix", f"{host.prefix} belongs to host {taken.name!r}")
    try:
        with tx.connection.begin_nested():
            tx.connection.execute(
                insert(tables.hosts).values(
                    id=host.id,
                    name=name,
                    prefix=str(host.prefix),
                    created_at=tx.now,
                    desired_revision=0,
                    applied_revision=0,
                    role=chosen.value,
                    external_id=external_id,
                )
            )
    except IntegrityError:
        raise ConflictError("name", f"host {name!r} or prefix {host.prefix} exists") from None
    token = tokens.issue(tx, PrincipalKind.HOST, host_id=host.id)
    data = {"name": name, "prefix": str(host.prefix), "role": chosen.value}
    tx.record("host.created", host.id, None, data, [host.id])
    return host, token


def _row(tx: Tx, ref: str) -> tables.Row:
    h = tables.hosts
    row = tx.connection.execute(select(h).where((h.c.id == ref) | (h.c.name == ref))).first()
    what = f"no host {ref!r}"
    if row is None:
        raise NotFoundError(what)
    access.check_host_is(tx.actor, row.id, what)
    return row


def get(tx: Tx, ref: str) -> Host:
    return from_row(_row(tx, ref))


def status(tx: Tx, ref: str) -> HostStatus:
    return status_from_row(_row(tx, ref))


def shows_substrate(tx: Tx) -> bool:
    """Whether the caller may see hosts' /64 prefixes: admins and hosts, never tenants."""
    return tx.actor.kind is not PrincipalKind.TENANT


def list_all(tx: Tx) -> list[Host]:
    h = tables.hosts
    query = select(h).order_by(h.c.name)
    if tx.actor.host_id is not None:
        query = query.where(h.c.id == tx.actor.host_id)
    return [from_row(row) for row in tx.connection.execute(query)]


def statuses(tx: Tx) -> list[HostStatus]:
    access.require_admin(tx.actor, "read the status of hosts")
    h = tables.hosts
    return [status_from_row(row) for row in tx.connection.execute(select(h).order_by(h.c.name))]


def report(tx: Tx, ref: str, applied_revision: int) -> HostStatus:
    """An agent says which revision it has applied (and that it is alive)."""
    access.require_not_tenant(tx.actor, "report for hosts")
    row = _row(tx, ref)
    current = tx.current_revision()
    if applied_revision < 0 or applied_revision > current:
        raise InvalidInputError(
            "applied_revision", f"{applied_revision} is not a revision (0..{current})"
        )
    tx.connection.execute(
        update(tables.hosts)
        .where(tables.hosts.c.id == row.id)
        .values(applied_revision=applied_revision, last_report_at=tx.now)
    )
    return status(tx, row.id)


def delete_host(tx: Tx, ref: str) -> Host:
    access.require_admin(tx.actor, "delete hosts")
    host = get(tx, ref)
    has_nodes = tx.connection.execute(
        select(tables.nodes.c.id).where(tables.nodes.c.host_id == host.id).limit(1)
    ).first()
    if has_nodes:
        raise ConflictError("host", f"host {host.name!r} still runs nodes")
    g = tables.edge_gateways
    gateway = tx.connection.execute(select(g.c.name).where(g.c.host_id == host.id)).first()
    if gateway is not None:
        raise ConflictError("host", f"host {host.name!r} still runs gateway {gateway.name!r}")
    tokens.revoke_host(tx, host.id)
    r = tables.gateway_reports
    tx.connection.execute(delete(r).where(r.c.host_id == host.id))
    tx.connection.execute(delete(tables.grants).where(tables.grants.c.host_id == host.id))
    tx.connection.execute(delete(tables.hosts).where(tables.hosts.c.id == host.id))
    tx.record("host.deleted", host.id, None, {"name": host.name})
    return host
