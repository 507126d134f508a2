"""Bearer tokens: generated here, shown once, stored only as a SHA-256 hash.

A token is 256 random bits, so a plain hash is enough to store it safely (there is nothing to
guess); lookups by hash are constant work. The kind prefix (`onm_admin_`, `onm_tenant_`,
`onm_host_`) lets a person tell tokens apart and lets secret scanners find them.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, insert, select

from onm.errors import UnauthorizedError
from onm.manager import tables
from onm.manager.store import Tx
from onm.model import HostId, Principal, PrincipalKind, TenantId
from onm.model.ids import new_id


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    tx: Tx, kind: PrincipalKind, tenant_id: TenantId | None = None, host_id: HostId | None = None
) -> str:
    """Create a token for a principal and return it in clear (the only time it exists so)."""
    token = f"onm_{kind.value}_{secrets.token_urlsafe(32)}"
    tx.connection.execute(
        insert(tables.tokens).values(
            id=new_id("token"),
            kind=kind.value,
            tenant_id=tenant_id,
            host_id=host_id,
            hash=digest(token),
            created_at=tx.now,
            revoked=False,
        )
    )
    return token


def revoke_tenant(tx: Tx, tenant_id: str) -> None:
    """Delete every token of a tenant (before the tenant is deleted)."""
    tx.connection.execute(delete(tables.tokens).where(tables.tokens.c.tenant_id == tenant_id))


def revoke_host(tx: Tx, host_id: str) -> None:
    """Delete every token of a host (before the host is deleted)."""
    tx.connection.execute(delete(tables.tokens).where(tables.tokens.c.host_id == host_id))


def authenticate(tx: Tx, token: str) -> Principal:
    """The principal a token stands for; `UnauthorizedError` when it stands for none."""
    if not token:
        raise UnauthorizedError("a bearer token is required")
    t, ten, hst = tables.tokens, tables.tenants, tables.hosts
    row = tx.connection.execute(
        select(t.c.kind, t.c.tenant_id, t.c.host_id, ten.c.name, hst.c.name)
        .select_from(
            t.outerjoin(ten, t.c.tenant_id == ten.c.id).outerjoin(hst, t.c.host_id == hst.c.id)
        )
        .where(t.c.hash == digest(token), t.c.revoked.is_(False))
    ).first()
    if row is None:
        raise UnauthorizedError("the token is not valid")
    kind = PrincipalKind(row[0])
    if kind is PrincipalKind.TENANT:
        return Principal(kind, tenant_id=TenantId(row[1]), name=f"tenant:{row[3]}")
    if kind is PrincipalKind.HOST:
        return Principal(kind, host_id=HostId(row[2]), name=f"host:{row[4]}")
    return Principal(kind)


def ensure_admin_token(tx: Tx) -> str | None:
    """A new admin token if none exists yet (first start), else None."""
    exists = tx.connection.execute(
        select(tables.tokens.c.id).where(
            tables.tokens.c.kind == PrincipalKind.ADMIN.value, tables.tokens.c.revoked.is_(False)
        )
    ).first()
    return None if exists else issue(tx, PrincipalKind.ADMIN)
