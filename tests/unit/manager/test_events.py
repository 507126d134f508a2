"""onm.manager.events: every change recorded (who, what, when, at which revision), read back by
visibility: admins see all, a tenant its own, hosts nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from onm.errors import ForbiddenError, InvalidInputError
from onm.manager import events, hosts, networks, nodes, tenants, tokens
from onm.manager.store import Store, Tx
from onm.model import Event, Principal
from support.manager_world import NOW, Actor, Clock, prefix_at


def authenticated(admin: Actor, token: str) -> Actor:
    """An actor for whoever `token` stands for, as the API would authenticate it."""
    principal: Principal = admin.read(lambda tx: tokens.authenticate(tx, token))
    return Actor(admin.store, admin.clock, principal)


def summary(found: list[Event]) -> list[tuple[str, str]]:
    return [(e.actor, e.kind) for e in found]


@pytest.fixture
def busy(admin: Actor, clock: Clock) -> dict[str, Actor]:
    """A short history written by admin, tenant z and host r; the actors by name."""
    _, z_token = admin(lambda tx: tenants.create(tx, "z"))
    admin(lambda tx: tenants.create(tx, "y"))
    _, r_token = admin(lambda tx: hosts.create(tx, "r", prefix_at(1)))
    as_z = authenticated(admin, z_token)
    as_r = authenticated(admin, r_token)
    clock.advance(dt.timedelta(minutes=1))
    as_z(lambda tx: networks.create(tx, None, "zn", ["10.0.0.0/24"]))
    as_z(lambda tx: nodes.create(tx, "zn1", "zn", "r", "10.0.0.2"))
    admin(lambda tx: networks.create(tx, "y", "yn", ["10.0.0.0/24"]))
    as_z(lambda tx: nodes.delete_node(tx, "zn1", "zn"))
    return {"admin": admin, "z": as_z, "r": as_r}


def test_every_change_is_recorded_with_actor_kind_and_revision(
    admin: Actor, busy: dict[str, Actor]
) -> None:
    found = admin.read(lambda tx: events.list_since(tx))
    assert summary(found) == [
        ("admin", "tenant.created"),
        ("admin", "tenant.created"),
        ("admin", "host.created"),
        ("tenant:z", "network.created"),
        ("tenant:z", "node.created"),
        ("admin", "network.created"),
        ("tenant:z", "node.deleted"),
    ]
    assert [e.revision for e in found] == list(range(1, 8))
    assert [e.seq for e in found] == sorted(e.seq for e in found)
    assert [e.at for e in found] == [NOW] * 3 + [NOW + dt.timedelta(minutes=1)] * 4
    assert all(e.at.tzinfo is dt.UTC for e in found)


def test_host_actor_name(store: Store, busy: dict[str, Actor]) -> None:
    """Hosts change nothing through today's use cases; what they would record names them."""
    as_r = busy["r"]
    assert as_r.principal.name == "host:r"
    with store.write(as_r.principal, NOW) as tx:
        tx.record("host.reported", as_r.principal.host_id or "", None)
    assert busy["admin"].read(lambda tx: events.latest(tx, 1))[0].actor == "host:r"


def test_tenant_sees_only_its_own_events(admin: Actor, busy: dict[str, Actor]) -> None:
    z = admin.read(lambda tx: tenants.get(tx, "z"))
    mine = busy["z"].read(lambda tx: events.list_since(tx))
    assert summary(mine) == [
        ("admin", "tenant.created"),
        ("tenant:z", "network.created"),
        ("tenant:z", "node.created"),
        ("tenant:z", "node.deleted"),
    ]
    assert {e.tenant_id for e in mine} == {z.id}
    assert busy["z"].read(lambda tx: events.latest(tx, 100)) == mine


def test_infrastructure_events_are_for_admins(admin: Actor, busy: dict[str, Actor]) -> None:
    host_events = [e for e in admin.read(events.list_since) if e.kind.startswith("host.")]
    assert [e.tenant_id for e in host_events] == [None]


def test_hosts_may_not_read_events(busy: dict[str, Actor]) -> None:
    with pytest.raises(ForbiddenError):
        busy["r"].read(events.list_since)
    with pytest.raises(ForbiddenError):
        busy["r"].read(events.latest)


def test_paging_with_after_and_limit(admin: Actor, busy: dict[str, Actor]) -> None:
    every = admin.read(events.list_since)
    first = admin.read(lambda tx: events.list_since(tx, 0, 3))
    rest = admin.read(lambda tx: events.list_since(tx, first[-1].seq, 100))
    assert first + rest == every
    assert admin.read(lambda tx: events.list_since(tx, every[-1].seq)) == []
    assert admin.read(lambda tx: events.list_since(tx, 0, 0)) == every[:1]  # at least one


def test_latest_is_the_newest_oldest_first(admin: Actor, busy: dict[str, Actor]) -> None:
    every = admin.read(events.list_since)
    assert admin.read(lambda tx: events.latest(tx, 2)) == every[-2:]
    assert admin.read(lambda tx: events.latest(tx, 1000)) == every


def test_limit_is_capped(admin: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MAX_PAGE", 3)
    for i in range(5):
        admin(lambda tx, i=i: tenants.create(tx, f"t{i}"))
    assert len(admin.read(lambda tx: events.list_since(tx, 0, 100))) == 3
    assert len(admin.read(lambda tx: events.latest(tx, 100))) == 3


def test_failed_change_leaves_no_event(admin: Actor) -> None:
    def half(tx: Tx) -> None:
        tenants.create(tx, "u")  # recorded, then undone with the transaction
        networks.create(tx, "u", "n", ["10.0.0.1/24"])  # host bits set: invalid

    admin(lambda tx: tenants.create(tx, "t"))
    with pytest.raises(InvalidInputError):
        admin(half)
    assert summary(admin.read(events.list_since)) == [("admin", "tenant.created")]
