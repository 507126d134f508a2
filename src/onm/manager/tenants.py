"""Tenants: created and deleted by admins; each gets a token that sees only its own objects."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from onm.errors import ConflictError, NotFoundError
from onm.manager import access, tables, tokens, validate
from onm.manager.store import Tx
from onm.model import PrincipalKind, Tenant, TenantId
from onm.model.ids import new_id


def _tenant(row: tables.Row) -> Tenant:
    return Tenant(TenantId(row.id), row.name, row.created_at)


def create(tx: Tx, name: str) -> tuple[Tenant, str]:
    """A new tenant and its first token (shown once)."""
    access.require_admin(tx.actor, "create tenants")
    validate.name("name", name)
    tenant = Tenant(TenantId(new_id("tenant")), name, tx.now)
    try:
        with tx.connection.begin_nested():
            tx.connection.execute(
                insert(tables.tenants).values(id=tenant.id, name=name, created_at=tx.now)
            )
    except IntegrityError:
        raise ConflictError("name", f"a tenant named {name!r} exists") from None
    token = tokens.issue(tx, PrincipalKind.TENANT, tenant_id=tenant.id)
    tx.record("tenant.created", tenant.id, tenant.id, {"name": name})
    return tenant, token


def get(tx: Tx, ref: str) -> Tenant:
    """A tenant by id or name, if the caller may see it."""
    access.require_not_host(tx.actor, "read tenants")
    t = tables.tenants
    row = tx.connection.execute(select(t).where((t.c.id == ref) | (t.c.name == ref))).first()
    what = f"no tenant {ref!r}"
    if row is None:
        raise NotFoundError(what)
    access.check_tenant_visible(tx.actor, row.id, what)
    return _tenant(row)


def list_all(tx: Tx) -> list[Tenant]:
    access.require_not_host(tx.actor, "read tenants")
    t = tables.tenants
    query = select(t).order_by(t.c.name)
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(t.c.id == scope)
    return [_tenant(row) for row in tx.connection.execute(query)]


def delete_tenant(tx: Tx, ref: str) -> Tenant:
    """Delete an empty tenant (its networks must be deleted first) and revoke its tokens."""
    access.require_admin(tx.actor, "delete tenants")
    tenant = get(tx, ref)
    has_networks = tx.connection.execute(
        select(tables.networks.c.id).where(tables.networks.c.tenant_id == tenant.id).limit(1)
    ).first()
    if has_networks:
        raise ConflictError("tenant", f"tenant {tenant.name!r} still has networks")
    tokens.revoke_tenant(tx, tenant.id)
    tx.connection.execute(delete(tables.tenants).where(tables.tenants.c.id == tenant.id))
    tx.record("tenant.deleted", tenant.id, tenant.id, {"name": tenant.name})
    return tenant
