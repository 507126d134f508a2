"""Helpers for the manager's in-process tests: a clock that only moves when told, use-case
runners for each kind of principal, and a small world of tenants, networks, hosts and nodes.

The fixtures in `tests/unit/manager/conftest.py` hand these out; test modules import the types
from here for their annotations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from starlette.types import ASGIApp, Message

from onm.addressing import HostPrefix, Location
from onm.manager import edge_pools, externals, hosts, networks, nodes, pools, tenants, tokens
from onm.manager.store import Store, Tx
from onm.model import Host, Network, Node, Principal, PrincipalKind, Tenant
from onm.model.principal import ADMIN

T = TypeVar("T")

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


class Clock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


def tenant_principal(tenant: Tenant) -> Principal:
    """The principal a tenant token stands for (as `tokens.authenticate` builds it)."""
    return Principal(PrincipalKind.TENANT, tenant_id=tenant.id, name=f"tenant:{tenant.name}")


def host_principal(host: Host) -> Principal:
    """The principal a host token stands for (as `tokens.authenticate` builds it)."""
    return Principal(PrincipalKind.HOST, host_id=host.id, name=f"host:{host.name}")


@dataclass(frozen=True)
class Actor:
    """Runs use cases as one principal, each call in its own transaction at the clock's time."""

    store: Store
    clock: Clock
    principal: Principal

    def __call__(self, work: Callable[[Tx], T]) -> T:
        """Run `work` in a write transaction (committed unless it raises)."""
        with self.store.write(self.principal, self.clock()) as tx:
            return work(tx)

    def read(self, work: Callable[[Tx], T]) -> T:
        """Run `work` in a read transaction (never committed)."""
        with self.store.read(self.principal, self.clock()) as tx:
            return work(tx)


def bearer(token: str) -> dict[str, str]:
    """The headers that present `token`."""
    return {"Authorization": f"Bearer {token}"}


def prefix_at(node: int, rack: int = 1) -> str:
    """The /64 of the host at locale 1, area 1, `rack`, `node`."""
    return str(HostPrefix(Location(locale=1, area=1, rack=rack, node=node)))


@dataclass(frozen=True)
class World:
    """Tenants a and b with networks on the same CIDR, hosts x and y running their nodes.

    - tenant a: network `na` 10.0.0.0/24 (vni 1) with a1 (10.0.0.11) on x and a2 (10.0.0.12)
      on y, and an empty network `empty`;
    - tenant b: network `nb` 10.0.0.0/24 (vni 2) with b1 (10.0.0.11, the same IP as a1) on y;
    - tenant `spare` and host `z`: empty, so they can be deleted.
    """

    a: Tenant
    b: Tenant
    spare: Tenant
    x: Host
    y: Host
    z: Host
    na: Network
    nb: Network
    empty: Network
    a1: Node
    a2: Node
    b1: Node
    tokens: dict[str, str]
    """Clear tokens by principal name: admin, tenant_a, tenant_b, host_x, host_y, host_z."""


CIDR = "10.0.0.0/24"


def build_world(store: Store, now: dt.datetime = NOW) -> World:
    """Create the world in one admin transaction."""
    with store.write(ADMIN, now) as tx:
        admin_token = tokens.ensure_admin_token(tx) or tokens.issue(tx, PrincipalKind.ADMIN)
        a, a_token = tenants.create(tx, "a")
        b, b_token = tenants.create(tx, "b")
        spare, _ = tenants.create(tx, "spare")
        x, x_token = hosts.create(tx, "x", prefix_at(1))
        y, y_token = hosts.create(tx, "y", prefix_at(2))
        z, z_token = hosts.create(tx, "z", prefix_at(3))
        na = networks.create(tx, "a", "na", [CIDR])
        nb = networks.create(tx, "b", "nb", [CIDR])
        empty = networks.create(tx, "a", "empty", ["192.168.0.0/24"])
        a1 = nodes.create(tx, "a1", "a/na", "x", "10.0.0.11")
        a2 = nodes.create(tx, "a2", "a/na", "y", "10.0.0.12")
        b1 = nodes.create(tx, "b1", "b/nb", "y", "10.0.0.11")
        pools.create(tx, "pa", "a/na", "10.0.0.3", {"check": {"kind": "none"}}, ["a1"])
    return World(
        a=a,
        b=b,
        spare=spare,
        x=x,
        y=y,
        z=z,
        na=na,
        nb=nb,
        empty=empty,
        a1=a1,
        a2=a2,
        b1=b1,
        tokens={
            "admin": admin_token,
            "tenant_a": a_token,
            "tenant_b": b_token,
            "host_x": x_token,
            "host_y": y_token,
            "host_z": z_token,
        },
    )


def build_edge(store: Store, now: dt.datetime = NOW) -> tuple[Host, Host, str, str]:
    """On top of the world: external network `internet`, edge hosts gw1 and gw2, and pool
    egress of na with gateways e1 (gw1) and e2 (gw2); the hosts and the gateways' ids."""
    with store.write(ADMIN, now) as tx:
        externals.create(tx, "internet", "30.0.0.0/16")
        gw1, _ = hosts.create(tx, "gw1", prefix_at(1, rack=9), role="edge", external="internet")
        gw2, _ = hosts.create(tx, "gw2", prefix_at(2, rack=9), role="edge", external="internet")
        edge_pools.create(tx, "egress", "a/na", {})
        edge_pools.add_gateway(tx, "a/na/egress", "e1", "gw1", "30.0.100.1")
        pool = edge_pools.add_gateway(tx, "a/na/egress", "e2", "gw2", "30.0.100.2")
    e1, e2 = (g.id for g in pool.gateways)
    return gw1, gw2, e1, e2


def clone(template: Store) -> Store:
    """A new in-memory store holding a copy of `template`'s in-memory database.

    Copying with SQLite's backup API costs well under a millisecond, where building the same
    state through migrations and use cases costs tens: the authorization matrix runs hundreds
    of requests, each against its own copy of one world.
    """
    copy = Store("sqlite://")
    source = template.engine.raw_connection()
    target = copy.engine.raw_connection()
    try:
        source.driver_connection.backup(target.driver_connection)  # type: ignore[union-attr]
    finally:
        target.close()
        source.close()
    return copy


def first_streamed_chunk(app: ASGIApp, target: str, token: str) -> tuple[int, bytes]:
    """GET `target` straight on the ASGI app; its status and first body chunk, then hang up.

    For endless responses (the event stream), which a buffering test client would wait on
    forever.
    """
    path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    status = 0
    chunk = b""

    async def run() -> None:
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:

                async def send(message: Message) -> None:
                    nonlocal status, chunk
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        return
                    chunk = chunk or message.get("body", b"")
                    if chunk or not message.get("more_body", False):
                        group.cancel_scope.cancel()  # a first chunk, or a whole answer

                group.start_soon(app, scope, receive, send)

    anyio.run(run)
    return status, chunk
