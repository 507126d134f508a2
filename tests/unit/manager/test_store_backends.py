"""The store suite on both backends (issue #3): every test runs on SQLite and on PostgreSQL.

Migrations are idempotent; the use cases work end to end through `Store.write`; the revision
goes up exactly once per transaction that changes something; concurrent writers (threads sharing
one store, and two stores on one database, as two manager replicas) lose nothing and allocate
nothing twice; a transaction that raises leaves no trace.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import pytest
from sqlalchemy import func, inspect, select

from onm.addressing import HostPrefix, Location
from onm.errors import ConflictError
from onm.manager import compiler, hosts, networks, nodes, reads, resolution, tables, tenants, tokens
from onm.manager.quota import Quotas
from onm.manager.store import Store, Tx
from onm.model import Network, Node
from onm.model.principal import ADMIN

T = TypeVar("T")
NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
THREADS = 8
NODES_PER_THREAD = 6  # 48 nodes


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on each backend (this module's tests replace the in-memory one)."""
    store = Store(database_url)
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()


def write(store: Store, work: Callable[[Tx], T]) -> T:
    with store.write(ADMIN, NOW) as tx:
        return work(tx)


def read(store: Store, work: Callable[[Tx], T]) -> T:
    with store.read(ADMIN, NOW) as tx:
        return work(tx)


def revision(store: Store) -> int:
    return read(store, Tx.current_revision)


def event_revisions(store: Store) -> list[int]:
    e = tables.events
    query = select(e.c.revision).order_by(e.c.seq)
    return read(store, lambda tx: [r for (r,) in tx.connection.execute(query)])


def count(store: Store, table: tables.Table) -> int:
    query = select(func.count()).select_from(table)
    return read(store, lambda tx: int(tx.connection.execute(query).scalar_one()))


@dataclass(frozen=True)
class World:
    network: str
    host_a: str
    host_b: str
    host_a_token: str


def prefix(node: int) -> str:
    return str(HostPrefix(Location(locale=1, area=2, rack=3, node=node)))


WORLD_EVENTS = 4


def make_world(store: Store) -> World:
    """One tenant, one /24 network, two hosts: all in one transaction."""

    def work(tx: Tx) -> World:
        tenant, _ = tenants.create(tx, "acme")
        network = networks.create(tx, tenant.id, "blue", ["10.1.0.0/24"])
        a, a_token = hosts.create(tx, "host-a", prefix(1))
        b, _ = hosts.create(tx, "host-b", prefix(2))
        return World(network.id, a.id, b.id, a_token)

    return write(store, work)


def add_node(store: Store, world: World, name: str, ip: str, host: str | None = None) -> Node:
    host = host or world.host_a
    return write(store, lambda tx: nodes.create(tx, name, world.network, host, ip))


def test_migrate_twice_is_idempotent(database_url: str) -> None:
    store = Store(database_url)
    try:
        store.migrate()
        store.migrate()
        with store.engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
        assert set(tables.metadata.tables) <= names
        assert count(store, tables.meta) == 1
        assert revision(store) == 0
    finally:
        store.dispose()


def test_use_cases_end_to_end(store: Store) -> None:
    world = make_world(store)
    web = add_node(store, world, "web", "10.1.0.10")
    db = add_node(store, world, "db", "10.1.0.20", world.host_b)

    host_a = read(store, lambda tx: tokens.authenticate(tx, world.host_a_token))
    with store.write(host_a, NOW) as tx:
        answer = resolution.resolve(tx, world.network, web.id, "10.1.0.20")

    network = read(store, lambda tx: networks.get(tx, world.network))
    b_prefix = read(store, lambda tx: hosts.get(tx, world.host_b)).prefix
    assert answer.target_id == db.id
    assert answer.mac == db.mac
    assert answer.substrate_address == compiler.substrate_address(b_prefix, network, db)
    assert answer.expires_at == NOW + resolution.RESOLUTION_TTL
    granted = read(store, lambda tx: reads.snapshot(tx, world.host_a).grants)
    assert granted == (answer,)
    # Reading the objects back gives what the use cases returned (timestamps keep their zone).
    assert read(store, lambda tx: nodes.get(tx, db.id)) == db
    assert read(store, lambda tx: nodes.get(tx, "web", world.network)).created_at == NOW


def test_revision_increments_once_per_changing_transaction(store: Store) -> None:
    world = make_world(store)  # four changes, one transaction
    assert revision(store) == 1
    assert event_revisions(store) == [1] * WORLD_EVENTS

    node = add_node(store, world, "web", "10.1.0.10")
    assert revision(store) == 2

    # A transaction that changes nothing the revision covers leaves it alone.
    write(store, lambda tx: resolution.resolve(tx, world.network, node.id, "10.1.0.10"))
    write(store, lambda tx: nodes.list_all(tx))
    assert revision(store) == 2

    def two_nodes(tx: Tx) -> None:
        nodes.create(tx, "a", world.network, world.host_a, "10.1.0.11")
        nodes.create(tx, "b", world.network, world.host_b, "10.1.0.12")

    write(store, two_nodes)
    assert revision(store) == 3
    assert event_revisions(store) == [1, 1, 1, 1, 2, 3, 3]
    statuses = {s.host.id: s.desired_revision for s in read(store, hosts.statuses)}
    assert statuses == {world.host_a: 3, world.host_b: 3}


def test_rollback_on_error_leaves_nothing(store: Store) -> None:
    world = make_world(store)
    before = {t: count(store, t) for t in tables.metadata.sorted_tables}

    def half_done(tx: Tx) -> None:
        tenants.create(tx, "other")
        nodes.create(tx, "web", world.network, world.host_a, "10.1.0.10")
        nodes.create(tx, "web", world.network, world.host_a, "10.1.0.11")  # name taken

    with pytest.raises(ConflictError):
        write(store, half_done)

    def crash(tx: Tx) -> None:
        hosts.create(tx, "host-c", prefix(3))
        raise RuntimeError("a bug half-way through a request")

    with pytest.raises(RuntimeError):
        write(store, crash)

    assert {t: count(store, t) for t in tables.metadata.sorted_tables} == before
    assert revision(store) == 1
    # The counters taken inside the failed transactions were rolled back too.
    assert add_node(store, world, "web", "10.1.0.10").mac == nodes.format_mac(nodes.MAC_BASE + 1)
    assert revision(store) == 2


def check_consistent(store: Store, created: list[Node]) -> None:
    """Nothing lost, nothing allocated twice, one revision per transaction, no gaps."""
    stored = read(store, lambda tx: nodes.list_all(tx))
    assert sorted(n.id for n in stored) == sorted(n.id for n in created)
    for field in ("ip", "mac", "interface"):
        assert len({getattr(n, field) for n in stored}) == len(stored), field
    assert len({(n.network_id, n.ip) for n in stored}) == len(stored)
    # make_world is revision 1 (WORLD_EVENTS events); then one revision and one event per node.
    assert revision(store) == 1 + len(created)
    assert event_revisions(store) == [1] * WORLD_EVENTS + list(range(2, 2 + len(created)))


def create_concurrently(stores: list[Store], world: World) -> list[Node]:
    """THREADS threads, each creating NODES_PER_THREAD nodes through stores[thread % len]."""
    start = threading.Barrier(THREADS)

    def worker(index: int) -> list[Node]:
        store = stores[index % len(stores)]
        start.wait()
        made = []
        for k in range(NODES_PER_THREAD):
            number = index * NODES_PER_THREAD + k
            made.append(add_node(store, world, f"n{number}", f"10.1.0.{100 + number}"))
        return made

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    return [node for made in results for node in made]


def test_concurrent_writers_lose_nothing(store: Store) -> None:
    world = make_world(store)
    created = create_concurrently([store], world)
    assert len(created) == THREADS * NODES_PER_THREAD
    check_consistent(store, created)


def test_concurrent_networks_get_distinct_ids(store: Store) -> None:
    make_world(store)
    start = threading.Barrier(THREADS)

    def create(name: str) -> Network:
        return write(store, lambda tx: networks.create(tx, "acme", name, ["10.1.0.0/24"]))

    def worker(index: int) -> list[Network]:
        start.wait()
        return [create(f"n{index}-{k}") for k in range(3)]

    with ThreadPoolExecutor(THREADS) as pool:
        created = [n for made in pool.map(worker, range(THREADS)) for n in made]
    stored = read(store, lambda tx: networks.list_all(tx))
    assert len(stored) == 1 + len(created)
    assert sorted(n.vni for n in stored) == list(range(1, len(stored) + 1))
    assert revision(store) == 1 + len(created)
    assert event_revisions(store) == [1] * WORLD_EVENTS + list(range(2, 2 + len(created)))


def test_two_stores_on_one_database(store: Store) -> None:
    """Two manager replicas on one database: one consistent revision sequence."""
    world = make_world(store)
    replica = Store(store.url)
    try:
        replica.migrate()  # a second manager starting up: migrating again is harmless
        created = create_concurrently([store, replica], world)
        check_consistent(replica, created)
    finally:
        replica.dispose()
    assert revision(store) == 1 + THREADS * NODES_PER_THREAD


def test_concurrent_conflicts_fail_cleanly(store: Store) -> None:
    """Threads racing for the same names: exactly one wins each, the others get ConflictError."""
    world = make_world(store)
    start = threading.Barrier(THREADS)

    def worker(index: int) -> list[Node | ConflictError]:
        start.wait()
        outcomes: list[Node | ConflictError] = []
        for k in range(NODES_PER_THREAD):
            try:
                outcomes.append(add_node(store, world, f"n{k}", f"10.1.0.{100 + k}"))
            except ConflictError as error:
                outcomes.append(error)
        return outcomes

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = [o for made in pool.map(worker, range(THREADS)) for o in made]
    created = [o for o in outcomes if isinstance(o, Node)]
    assert len(created) == NODES_PER_THREAD
    assert sorted(n.name for n in created) == [f"n{k}" for k in range(NODES_PER_THREAD)]
    check_consistent(store, created)


def test_tenant_quota_limits_round_trip(store: Store) -> None:
    defaults = Quotas(networks=3, nodes=30)
    write(store, lambda tx: tenants.create(tx, "q"))
    write(
        store, lambda tx: tenants.set_quotas(tx, "q", {"networks": 0, "nodes": 1_000_000}, defaults)
    )
    found = read(store, lambda tx: tenants.usage(tx, "q", defaults))
    assert (found.tenant.quotas.networks, found.tenant.quotas.nodes) == (0, 1_000_000)
    assert [(u.limit, u.own) for u in found.quotas] == [(0, True), (1_000_000, True)]
    write(store, lambda tx: tenants.set_quotas(tx, "q", {"networks": None}, defaults))
    found = read(store, lambda tx: tenants.usage(tx, "q", defaults))
    assert [(u.limit, u.own) for u in found.quotas] == [(3, False), (1_000_000, True)]
    assert read(store, lambda tx: tenants.get(tx, "q")).quotas == found.tenant.quotas
