"""Who may see and change what (DESIGN.md section 6).

Rules: admin tokens may do everything; tenant tokens see and change only their own tenant's
objects, and another tenant's objects answer 404 as if they did not exist; host tokens may only
read what their own agent needs, resolve on behalf of nodes they run, and report. Use cases call
these checks before touching anything.
"""

from __future__ import annotations

from onm.errors import ForbiddenError, NotFoundError
from onm.model import HostId, Principal, PrincipalKind, TenantId


def require_admin(actor: Principal, action: str) -> None:
    if not actor.is_admin:
        raise ForbiddenError(f"only an admin token may {action}")


def require_not_host(actor: Principal, action: str) -> None:
    if actor.kind is PrincipalKind.HOST:
        raise ForbiddenError(f"a host token may not {action}")


def require_not_tenant(actor: Principal, action: str) -> None:
    if actor.kind is PrincipalKind.TENANT:
        raise ForbiddenError(f"a tenant token may not {action}")


def tenant_scope(actor: Principal) -> TenantId | None:
    """The only tenant the caller may see (None: every tenant)."""
    return actor.tenant_id if actor.kind is PrincipalKind.TENANT else None


def check_tenant_visible(actor: Principal, tenant_id: str, what: str) -> None:
    """A tenant token asking for another tenant's object gets the same 404 as for none."""
    if actor.kind is PrincipalKind.TENANT and actor.tenant_id != tenant_id:
        raise NotFoundError(what)


def check_host_is(actor: Principal, host_id: HostId | str, what: str) -> None:
    """A host token may act only for itself; other hosts' objects answer 404."""
    if actor.kind is PrincipalKind.HOST and actor.host_id != host_id:
        raise NotFoundError(what)
