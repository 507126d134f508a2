"""onm.manager.store on in-memory SQLite: one transaction per request, one revision per change.

(The same rules on SQLite files and PostgreSQL, with concurrent writers across replicas, are in
test_store_backends.py.)
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import StatementError

from onm.errors import ConflictError, InvalidInputError
from onm.manager import hosts, networks, nodes, tables, tenants
from onm.manager.store import Store, Tx, is_memory
from onm.model.principal import ADMIN
from support.manager_world import NOW, Actor, prefix_at


def revision(admin: Actor) -> int:
    return admin.read(Tx.current_revision)


def count(admin: Actor, table: Table) -> int:
    query = select(func.count()).select_from(table)
    return int(admin.read(lambda tx: tx.connection.execute(query).scalar_one()))


def test_fresh_store_is_at_revision_zero_with_no_events(admin: Actor) -> None:
    assert revision(admin) == 0
    assert count(admin, tables.events) == 0


def test_migrate_twice_is_harmless(store: Store, admin: Actor) -> None:
    admin(lambda tx: tenants.create(tx, "t"))
    store.migrate()
    assert [t.name for t in admin.read(tenants.list_all)] == ["t"]


def test_is_memory() -> None:
    assert is_memory("sqlite://")
    assert is_memory("sqlite:///:memory:")
    assert not is_memory("sqlite:////tmp/onm.db")
    assert not is_memory("postgresql://u@h/db")


def test_one_revision_per_transaction_however_many_changes(admin: Actor) -> None:
    def many(tx: Tx) -> None:
        tenants.create(tx, "t")
        networks.create(tx, "t", "n", ["10.0.0.0/24"])
        hosts.create(tx, "h", prefix_at(1))

    admin(many)
    assert revision(admin) == 1
    events = admin.read(lambda tx: tx.connection.execute(select(tables.events)).all())
    assert [e.kind for e in events] == ["tenant.created", "network.created", "host.created"]
    assert {e.revision for e in events} == {1}

    admin(lambda tx: tenants.create(tx, "u"))
    assert revision(admin) == 2


def test_reads_and_refusals_do_not_bump_the_revision(admin: Actor) -> None:
    admin(lambda tx: tenants.create(tx, "t"))
    admin(tenants.list_all)  # a write transaction that changes nothing
    admin.read(tenants.list_all)
    with pytest.raises(InvalidInputError):
        admin(lambda tx: tenants.create(tx, "Not A Name"))
    assert revision(admin) == 1


def test_failed_use_case_writes_nothing(admin: Actor) -> None:
    """Node create failing on a duplicate IP: no node, no MAC used, no event, no revision."""
    admin(lambda tx: tenants.create(tx, "t"))
    admin(lambda tx: networks.create(tx, "t", "n", ["10.0.0.0/24"]))
    admin(lambda tx: hosts.create(tx, "h", prefix_at(1)))
    first = admin(lambda tx: nodes.create(tx, "a", "n", "h", "10.0.0.2"))
    before = (revision(admin), count(admin, tables.events), count(admin, tables.nodes))

    with pytest.raises(ConflictError) as caught:
        admin(lambda tx: nodes.create(tx, "b", "n", "h", "10.0.0.2"))
    assert caught.value.field == "ip"

    assert (revision(admin), count(admin, tables.events), count(admin, tables.nodes)) == before
    second = admin(lambda tx: nodes.create(tx, "b", "n", "h", "10.0.0.3"))
    assert int(second.mac.replace(":", ""), 16) == int(first.mac.replace(":", ""), 16) + 1


def test_error_after_writes_rolls_all_back(admin: Actor) -> None:
    """Writes done before the failure in the same transaction are undone with it."""

    def half(tx: Tx) -> None:
        tenants.create(tx, "t")
        tenants.create(tx, "t")  # ConflictError: the first create must vanish too

    with pytest.raises(ConflictError):
        admin(half)
    assert admin.read(tenants.list_all) == []
    assert revision(admin) == 0
    assert count(admin, tables.tokens) == 0


def test_read_transaction_commits_nothing(store: Store) -> None:
    with store.read(ADMIN, NOW) as tx:
        tenants.create(tx, "t")
    with store.read(ADMIN, NOW) as tx:
        assert tenants.list_all(tx) == []
        assert tx.current_revision() == 0


def test_timestamps_round_trip_as_aware_utc(admin: Actor) -> None:
    tenant, _ = admin(lambda tx: tenants.create(tx, "t"))
    stored = admin.read(lambda tx: tenants.get(tx, "t"))
    assert stored.created_at == NOW
    assert stored.created_at.tzinfo is dt.UTC
    assert stored == tenant


def test_aware_non_utc_time_is_stored_as_the_same_instant(store: Store) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2025, 6, 1, 12, 0, tzinfo=paris)
    with store.write(ADMIN, local) as tx:
        tenants.create(tx, "t")
    with store.read(ADMIN, NOW) as tx:
        created = tenants.get(tx, "t").created_at
    assert created == local
    assert created.tzinfo is dt.UTC
    assert created.hour == 11


def test_naive_time_is_refused(store: Store) -> None:
    naive = dt.datetime(2025, 1, 1)
    with pytest.raises(StatementError, match="naive"), store.write(ADMIN, naive) as tx:
        tx.connection.execute(insert(tables.tenants).values(id="ten-1", name="t", created_at=naive))


def test_event_records_actor_time_and_marks_hosts(store: Store, admin: Actor) -> None:
    host, _ = admin(lambda tx: hosts.create(tx, "h", prefix_at(1)))
    with store.write(ADMIN, NOW) as tx:
        tx.record("test.happened", "obj-1", None, {"k": 1}, [host.id])
    row = admin.read(
        lambda tx: tx.connection.execute(
            select(tables.events).where(tables.events.c.kind == "test.happened")
        ).one()
    )
    assert (row.revision, row.actor, row.object_id, row.data, row.at) == (
        2,
        "admin",
        "obj-1",
        {"k": 1},
        NOW,
    )
    assert admin.read(lambda tx: hosts.status(tx, "h")).desired_revision == 2


def test_in_memory_store_serves_threads_one_transaction_at_a_time(admin: Actor) -> None:
    """One shared connection: concurrent requests must queue, not fail (regression)."""
    workers = 6
    start = threading.Barrier(workers)

    def work(i: int) -> None:
        start.wait()
        for j in range(10):
            admin(lambda tx, name=f"t{i}-{j}": tenants.create(tx, name))
            admin.read(tenants.list_all)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    assert revision(admin) == workers * 10
    assert len(admin.read(tenants.list_all)) == workers * 10
