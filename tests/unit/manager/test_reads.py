"""onm.manager.reads: per-host snapshots read from a real store, and which hosts each change
marks as needing one.

The compiler itself is tested with no database (`test_compiler.py`); here intent goes in
through the use cases, and snapshots come out of the store as data. The marks the use cases
set by hand are checked against the compiler's own delta of whole compilations.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from onm.addressing import embed_ipv4
from onm.errors import ForbiddenError, NotFoundError
from onm.manager import compiler, hosts, networks, nodes, reads, resolution, tenants
from onm.manager.resolution import RESOLUTION_TTL
from onm.manager.store import Tx
from onm.model import Host, HostId, Network, Node, Tenant
from onm.model.snapshot import HostSnapshot, LocalNode, Resident
from support.manager_world import Actor, Clock, World, prefix_at

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]


def where(host: Host, network: Network, node: Node) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(
        embed_ipv4(host.prefix.value, network.vni, node.ip.packed, node.slot)
    )


def resident(host: Host, network: Network, node: Node) -> Resident:
    return Resident(network.id, node.ip, where(host, network, node), node.mac)


def test_snapshot_of_a_host_with_one_network(world: World, admin: Actor) -> None:
    snap = admin.read(lambda tx: reads.snapshot(tx, "x"))
    assert snap.revision == admin.read(Tx.current_revision)
    assert snap.host == world.x
    assert snap.networks == (world.na,)
    assert snap.nodes == (LocalNode(world.a1, where(world.x, world.na, world.a1)),)
    # Every node of na, wherever it runs; nothing of nb although b1 shares a1's IP.
    assert set(snap.residents) == {
        resident(world.x, world.na, world.a1),
        resident(world.y, world.na, world.a2),
    }
    assert snap.grants == ()


def test_snapshot_of_a_host_with_two_tenants(world: World, admin: Actor) -> None:
    snap = admin.read(lambda tx: reads.snapshot(tx, "y"))
    assert set(snap.networks) == {world.na, world.nb}
    assert set(snap.nodes) == {
        LocalNode(world.a2, where(world.y, world.na, world.a2)),
        LocalNode(world.b1, where(world.y, world.nb, world.b1)),
    }
    assert set(snap.residents) == {
        resident(world.x, world.na, world.a1),
        resident(world.y, world.na, world.a2),
        resident(world.y, world.nb, world.b1),
    }


def test_snapshot_of_an_idle_host_is_empty(world: World, admin: Actor) -> None:
    snap = admin.read(lambda tx: reads.snapshot(tx, "z"))
    assert (snap.host, snap.networks, snap.nodes, snap.residents, snap.grants) == (
        world.z,
        (),
        (),
        (),
        (),
    )


def test_snapshot_is_deterministic(world: World, admin: Actor) -> None:
    first = admin.read(lambda tx: reads.snapshot(tx, "y"))
    assert admin.read(lambda tx: reads.snapshot(tx, world.y.id)) == first


def test_grants_appear_in_the_asking_host_snapshot_until_they_expire(
    world: World, admin: Actor, as_host: AsHost, clock: Clock
) -> None:
    answer = as_host(world.x)(lambda tx: resolution.resolve(tx, "a/na", "a1", "10.0.0.12"))
    assert admin.read(lambda tx: reads.snapshot(tx, "x")).grants == (answer,)
    assert admin.read(lambda tx: reads.snapshot(tx, "y")).grants == ()
    clock.advance(RESOLUTION_TTL)
    assert admin.read(lambda tx: reads.snapshot(tx, "x")).grants == ()


def test_who_may_read_a_snapshot(
    world: World, admin: Actor, as_host: AsHost, as_tenant: AsTenant
) -> None:
    assert as_host(world.x).read(lambda tx: reads.snapshot(tx, "x")).host == world.x
    with pytest.raises(NotFoundError):
        as_host(world.x).read(lambda tx: reads.snapshot(tx, "y"))
    with pytest.raises(NotFoundError):
        as_host(world.x).read(lambda tx: reads.desired_revision(tx, "y"))
    # A snapshot holds every tenant's nodes on the host: no tenant may read one (regression).
    with pytest.raises(ForbiddenError):
        as_tenant(world.a).read(lambda tx: reads.snapshot(tx, "x"))
    with pytest.raises(ForbiddenError):
        as_tenant(world.a).read(lambda tx: reads.desired_revision(tx, "x"))
    with pytest.raises(NotFoundError):
        admin.read(lambda tx: reads.snapshot(tx, "nobody"))


def desired(admin: Actor) -> dict[str, int]:
    return {s.host.name: s.desired_revision for s in admin.read(hosts.statuses)}


def add(name: str, network: str, host: str, ip: str) -> Callable[[Tx], object]:
    return lambda tx: nodes.create(tx, name, network, host, ip)


def drop(name: str, network: str) -> Callable[[Tx], object]:
    return lambda tx: nodes.delete_node(tx, name, network)


def two_networks(tx: Tx) -> None:
    networks.create(tx, "t", "n", ["10.0.0.0/24"])
    networks.create(tx, "t", "m", ["10.0.0.0/24"])


# Each change, then every host's desired revision. A host is marked when it is created, and on
# every node change in a network it has nodes in (or had, for a delete); tenant and network
# changes mark nobody. Each row is one transaction, so the revision is the row number.
DESIRED: list[tuple[str, Callable[[Tx], object], dict[str, int]]] = [
    ("1 host x", lambda tx: hosts.create(tx, "x", prefix_at(1)), {"x": 1}),
    ("2 host y", lambda tx: hosts.create(tx, "y", prefix_at(2)), {"x": 1, "y": 2}),
    ("3 host z", lambda tx: hosts.create(tx, "z", prefix_at(3)), {"x": 1, "y": 2, "z": 3}),
    ("4 tenant", lambda tx: tenants.create(tx, "t"), {"x": 1, "y": 2, "z": 3}),
    ("5 networks n, m", two_networks, {"x": 1, "y": 2, "z": 3}),
    ("6 n1 on x", add("n1", "n", "x", "10.0.0.2"), {"x": 6, "y": 2, "z": 3}),
    ("7 n2 on y", add("n2", "n", "y", "10.0.0.3"), {"x": 7, "y": 7, "z": 3}),
    ("8 m1 on y", add("m1", "m", "y", "10.0.0.2"), {"x": 7, "y": 8, "z": 3}),
    ("9 m2 on z", add("m2", "m", "z", "10.0.0.3"), {"x": 7, "y": 9, "z": 9}),
    ("10 n1 deleted", drop("n1", "n"), {"x": 10, "y": 10, "z": 9}),
    ("11 n2 deleted", drop("n2", "n"), {"x": 10, "y": 11, "z": 9}),
    ("12 n deleted", lambda tx: networks.delete_network(tx, "t/n"), {"x": 10, "y": 11, "z": 9}),
]


def test_desired_revision_marks_exactly_the_hosts_a_change_alters(admin: Actor) -> None:
    for label, change, expected in DESIRED:
        admin(change)
        assert desired(admin) == expected, label
        for name, revision in expected.items():
            assert admin.read(lambda tx, n=name: reads.desired_revision(tx, n)) == revision


def test_snapshot_revision_is_the_global_one(world: World, admin: Actor) -> None:
    """An untouched host's snapshot still says which revision it was read at."""
    admin(lambda tx: tenants.create(tx, "later"))
    current = admin.read(Tx.current_revision)
    snap = admin.read(lambda tx: reads.snapshot(tx, "z"))
    assert snap.revision == current
    assert admin.read(lambda tx: reads.desired_revision(tx, "z")) < current


def test_a_host_needs_only_its_part_of_the_intent(
    world: World, admin: Actor, as_host: AsHost
) -> None:
    """The per-host read compiles to what the whole intent compiles to, grants included."""
    as_host(world.x)(lambda tx: resolution.resolve(tx, "a/na", "a1", "10.0.0.12"))
    as_host(world.y)(lambda tx: resolution.resolve(tx, "a/na", "a2", "10.0.0.11"))
    for h in (world.x, world.y, world.z):
        whole = admin.read(lambda tx, h=h: compiler.compile_host(reads.intent(tx), h.id, 1, tx.now))
        part = admin.read(
            lambda tx, h=h: compiler.compile_host(reads.intent_for_host(tx, h), h.id, 1, tx.now)
        )
        assert part == whole, h.name
    assert admin.read(lambda tx: reads.snapshot(tx, "x")).grants != ()


def marked_and_changed(admin: Actor, change: Callable[[Tx], object]) -> tuple[set[str], set[str]]:
    """The hosts `change` marked (desired revision moved) and those the compiler says changed."""

    def compiled(tx: Tx) -> dict[HostId, HostSnapshot]:
        return compiler.compile_all(reads.intent(tx), 0, tx.now)

    before, marks = admin.read(compiled), desired(admin)
    admin(change)
    after, now_marks = admin.read(compiled), desired(admin)
    names = {s.host.id: s.host.name for s in (*before.values(), *after.values())}
    changed = {names[h] for h in compiler.changed_hosts(before, after)}
    marked = {h for h, r in now_marks.items() if marks.get(h) != r}
    return marked, changed & set(now_marks)


def test_the_use_cases_mark_exactly_the_hosts_the_compiler_sees_change(admin: Actor) -> None:
    """The hand-written marks (`hosts.desired_revision`) agree with the pure compiler's delta."""
    for label, change, _expected in DESIRED:
        marked, changed = marked_and_changed(admin, change)
        assert marked == changed, label


def test_deleting_a_granted_target_marks_the_hosts_the_compiler_sees_change(
    world: World, admin: Actor, as_host: AsHost
) -> None:
    as_host(world.x)(lambda tx: resolution.resolve(tx, "a/na", "a1", "10.0.0.12"))
    marked, changed = marked_and_changed(admin, lambda tx: nodes.delete_node(tx, "a/na/a2"))
    assert marked == changed == {"x", "y"}
