"""Tenants: created and deleted by admins; each gets a token that sees only its own objects.

Admins may also give a tenant quota limits of its own (`set_quotas`); a tenant reads its own
limits and what it holds against them (`usage`), never sets them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from onm.errors import ConflictError, InvalidInputError, NotFoundError
from onm.manager import access, quota, tables, tokens
from onm.manager.store import Tx
from onm.model import PrincipalKind, Tenant, TenantId, validate
from onm.model.ids import new_id
from onm.model.tenant import QuotaKind, TenantUsage, check_quota


def _tenant(row: tables.Row) -> Tenant:
    return Tenant(TenantId(row.id), row.name, row.created_at, quota.overrides(row))


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


def usage(tx: Tx, ref: str, defaults: quota.Quotas) -> TenantUsage:
    """A tenant (as `get` finds it) with each quota's limit, its source and the use."""
    tenant = get(tx, ref)
    return TenantUsage(tenant, quota.usage(tx, tenant.id, tenant.quotas, defaults))


def set_quotas(
    tx: Tx, ref: str, changes: Mapping[str, int | None], defaults: quota.Quotas
) -> TenantUsage:
    """Set the tenant's own limits (admins only): `changes` maps a quota (`networks`, `nodes`)
    to its new limit, or to None to go back to the manager's default; quotas not named keep
    theirs. A limit below the use is allowed (existing objects stay, new ones are refused).
    A change is recorded as a `tenant.quota_changed` event; setting what is set records none."""
    access.require_admin(tx.actor, "set tenant quotas")
    kinds = {kind.value: kind for kind in QuotaKind}
    for name, value in changes.items():
        if name not in kinds:
            known = ", ".join(kinds)
            raise InvalidInputError(f"quotas.{name}", f"no such quota (known: {known})")
        if value is not None:
            check_quota(f"quotas.{name}", value)
    tenant = get(tx, ref)
    before = {kind.value: tenant.quotas.of(kind) for kind in QuotaKind}
    changed = {name: value for name, value in changes.items() if before[name] != value}
    if changed:
        values = {quota.COLUMNS[kinds[name]].name: value for name, value in changed.items()}
        t = tables.tenants
        tx.connection.execute(update(t).where(t.c.id == tenant.id).values(**values))
        data = {
            "name": tenant.name,
            "quotas": {
                name: {"from": before[name], "to": value} for name, value in changed.items()
            },
        }
        tx.record("tenant.quota_changed", tenant.id, tenant.id, data)
    return usage(tx, tenant.id, defaults)


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
