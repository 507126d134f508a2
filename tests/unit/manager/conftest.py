"""Fixtures for the manager's unit tests: an in-memory store, a fixed clock, use-case runners
for admin, tenant and host principals, and an HTTP client on the real application.

Each test gets a fresh in-memory SQLite database brought to the newest migration. The clock
stands still at `NOW` unless a test advances it. `admin(...)`, `as_tenant(t)(...)` and
`as_host(h)(...)` run a use case in one write transaction as that principal (`.read(...)` for a
read transaction). `world` fills the store with two tenants' networks on one CIDR and nodes
on two hosts (`support.manager_world.World`). `client` talks HTTP to `create_app` over the same
store, authenticated as admin; pass `headers=bearer(token)` to act as someone else. The types
and helpers live in `support.manager_world`, where test modules can import them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from onm.manager import tokens
from onm.manager.api.app import Context, create_app
from onm.manager.store import Store
from onm.model import Host, Tenant
from onm.model.principal import ADMIN
from support.manager_world import (
    Actor,
    Clock,
    World,
    bearer,
    build_world,
    host_principal,
    tenant_principal,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> Iterator[Store]:
    store = Store("sqlite://")
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def admin(store: Store, clock: Clock) -> Actor:
    return Actor(store, clock, ADMIN)


@pytest.fixture
def as_tenant(store: Store, clock: Clock) -> Callable[[Tenant], Actor]:
    return lambda tenant: Actor(store, clock, tenant_principal(tenant))


@pytest.fixture
def as_host(store: Store, clock: Clock) -> Callable[[Host], Actor]:
    return lambda host: Actor(store, clock, host_principal(host))


@pytest.fixture
def world(store: Store, clock: Clock, admin_token: str) -> World:
    """Tenants a and b, networks na and nb on one CIDR, hosts x, y (and empty z): see `World`."""
    return build_world(store, clock())


@pytest.fixture
def admin_token(admin: Actor) -> str:
    token = admin(tokens.ensure_admin_token)
    assert token is not None
    return token


@pytest.fixture
def context(store: Store, clock: Clock) -> Context:
    # Long polls re-check every 20 ms so that tests of them stay short.
    return Context(store, clock=clock, poll_interval=0.02)


@pytest.fixture
def client(context: Context, admin_token: str) -> Iterator[TestClient]:
    """HTTP on the real app, as admin; server errors come back as 500 answers, not raised."""
    app = create_app(context)
    with TestClient(app, headers=bearer(admin_token), raise_server_exceptions=False) as test_client:
        yield test_client
