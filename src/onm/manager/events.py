"""The event log: every change, who made it and at which revision; read back by visibility.

Admins see every event; a tenant sees its own tenant's; hosts see none (they follow their
snapshot instead).
"""

from __future__ import annotations

from sqlalchemy import select

from onm.api.codec import decode
from onm.manager import access, tables
from onm.manager.store import Tx
from onm.model import Event

MAX_PAGE = 1000


def _event(row: tables.Row) -> Event:
    return decode(Event, row)


def list_since(tx: Tx, after: int = 0, limit: int = 100) -> list[Event]:
    """Events with seq > `after`, oldest first, at most `limit` (capped at MAX_PAGE)."""
    access.require_not_host(tx.actor, "read events")
    e = tables.events
    query = select(e).where(e.c.seq > after).order_by(e.c.seq).limit(max(1, min(limit, MAX_PAGE)))
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(e.c.tenant_id == scope)
    return [_event(row) for row in tx.connection.execute(query)]


def latest(tx: Tx, limit: int = 20) -> list[Event]:
    """The newest `limit` events visible to the caller, oldest first."""
    access.require_not_host(tx.actor, "read events")
    e = tables.events
    query = select(e).order_by(e.c.seq.desc()).limit(max(1, min(limit, MAX_PAGE)))
    scope = access.tenant_scope(tx.actor)
    if scope is not None:
        query = query.where(e.c.tenant_id == scope)
    return [_event(row) for row in reversed(tx.connection.execute(query).all())]
