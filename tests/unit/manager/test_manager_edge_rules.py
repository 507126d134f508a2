"""Firewall rules and public IPs of edge pools in the manager (issue #10): ordering, who may do
what, every bad input refused whole with the field named, and the hosts each change marks
(exactly those whose compiled snapshot changes).

World (`support.manager_world`): network na (tenant a, 10.0.0.0/24) with a1 on x and a2 on y;
nb (tenant b) with b1 on y; here an external network `internet` (30.0.0.0/16), edge hosts gw1,
gw2 on it and gw3 on `partner` (40.0.0.0/16); edge pool egress of na with e1 (gw1, 30.0.100.1)
and e2 (gw2, 30.0.100.2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from onm.api import codec, schemas
from onm.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import (
    compiler,
    edge_pools,
    edge_rules,
    events,
    externals,
    hosts,
    nodes,
    public_ips,
    reads,
    tables,
)
from onm.manager.store import Store, Tx
from onm.model.edge_rule import Action, Direction, Proto
from onm.model.principal import ADMIN
from onm.selection.public_ip import owner
from support.manager_world import (
    NOW,
    World,
    build_world,
    host_principal,
    prefix_at,
    tenant_principal,
)

Setup = tuple[Store, World]


@pytest.fixture
def world() -> Iterator[Setup]:
    store = Store("sqlite://")
    store.migrate()
    built = build_world(store)
    with store.write(ADMIN, NOW) as tx:
        externals.create(tx, "internet", "30.0.0.0/16")
        externals.create(tx, "partner", "40.0.0.0/16")
        hosts.create(tx, "gw1", prefix_at(1, rack=9), role="edge", external="internet")
        hosts.create(tx, "gw2", prefix_at(2, rack=9), role="edge", external="internet")
        hosts.create(tx, "gw3", prefix_at(3, rack=9), role="edge", external="partner")
        edge_pools.create(tx, "egress", "a/na", {})
        edge_pools.add_gateway(tx, "a/na/egress", "e1", "gw1", "30.0.100.1")
        edge_pools.add_gateway(tx, "a/na/egress", "e2", "gw2", "30.0.100.2")
    yield store, built
    store.dispose()


def rules(store: Store) -> list[tuple[int, str, str]]:
    with store.read(ADMIN, NOW) as tx:
        found = edge_rules.list_all(tx, "a/na/egress")
    return [(r.position, r.action.value, r.proto.value) for r in found]


# --- rules -------------------------------------------------------------------------------------


def test_the_issues_rule_and_its_order(world: Setup) -> None:
    store, _ = world
    with store.write(ADMIN, NOW) as tx:
        deny = edge_rules.add(tx, "a/na/egress", "egress", "deny", "tcp", "25")
        allow = edge_rules.add(tx, "a/na/egress", "egress", "allow", "udp", "1000-2000")
        first = edge_rules.add(tx, "a/na/egress", "ingress", "allow", "icmp", position=1)
    assert (deny.direction, deny.action, deny.proto, deny.ports) == (
        Direction.EGRESS,
        Action.DENY,
        Proto.TCP,
        (25, 25),
    )
    assert rules(store) == [(1, "allow", "icmp"), (2, "deny", "tcp"), (3, "allow", "udp")]
    with store.write(ADMIN, NOW) as tx:
        edge_rules.remove(tx, "a/na/egress", deny.id)
    assert rules(store) == [(1, "allow", "icmp"), (2, "allow", "udp")]
    with store.read(ADMIN, NOW) as tx:
        shown = edge_pools.detail(tx, "a/na/egress")
        kinds = [e.kind for e in events.list_since(tx)]
    assert [r.id for r in shown.rules] == [first.id, allow.id]
    assert kinds.count("edge_rule.added") == 3 and kinds.count("edge_rule.deleted") == 1


@pytest.mark.parametrize(
    ("args", "position", "field", "words"),
    [
        (("egress", "deny", "tcp", "2000-1000"), None, "ports", "reversed"),
        (("egress", "deny", "icmp", "25"), None, "ports", "proto tcp or udp"),
        (("egress", "deny", "tcp", None, "30.0.0.1/16"), None, "remote", "not an IPv4 CIDR"),
        (("out", "deny"), None, "direction", "not one of egress, ingress"),
        (("egress", "drop"), None, "action", "not one of allow, deny"),
        (("egress", "deny", "gre"), None, "proto", "not one of any"),
        (("egress", "deny"), 3, "position", "outside 1..2"),
        (("egress", "deny"), 0, "position", "outside 1..2"),
    ],
)
def test_bad_rules_name_the_field_and_write_nothing(
    world: Setup, args: tuple[str, ...], position: int | None, field: str, words: str
) -> None:
    store, _ = world
    with store.write(ADMIN, NOW) as tx:
        edge_rules.add(tx, "a/na/egress", "egress", "allow")
    with pytest.raises(InvalidInputError, match=words) as caught, store.write(ADMIN, NOW) as tx:
        edge_rules.add(tx, "a/na/egress", *args, position=position)  # type: ignore[misc]
    assert caught.value.field == field
    assert rules(store) == [(1, "allow", "any")]


def test_a_pool_holds_at_most_max_rules(world: Setup) -> None:
    store, _ = world
    with store.write(ADMIN, NOW) as tx:
        for _ in range(edge_rules.MAX_RULES):
            edge_rules.add(tx, "a/na/egress", "egress", "allow")
        with pytest.raises(ConflictError, match="rules already"):
            edge_rules.add(tx, "a/na/egress", "egress", "deny")


def test_tenants_manage_only_their_own_rules_and_hosts_none(world: Setup) -> None:
    store, w = world
    with store.write(tenant_principal(w.a), NOW) as tx:
        made = edge_rules.add(tx, "na/egress", "egress", "deny", "tcp", "25")
    with pytest.raises(NotFoundError), store.write(tenant_principal(w.b), NOW) as tx:
        edge_rules.add(tx, "a/na/egress", "egress", "allow")
    with pytest.raises(NotFoundError), store.read(tenant_principal(w.b), NOW) as tx:
        edge_rules.list_all(tx, "a/na/egress")
    with pytest.raises(ForbiddenError), store.write(host_principal(w.x), NOW) as tx:
        edge_rules.remove(tx, "a/na/egress", made.id)
    missing = pytest.raises(NotFoundError, match="no rule 'rul-000000000000'")
    with missing, store.write(ADMIN, NOW) as tx:
        edge_rules.remove(tx, "a/na/egress", "rul-000000000000")


# --- public IPs --------------------------------------------------------------------------------


def test_a_public_ip_held_by_one_gateway(world: Setup) -> None:
    store, w = world
    with store.write(tenant_principal(w.a), NOW) as tx:
        made = public_ips.add(tx, "na/a1", "egress", "30.0.100.50")
    with store.read(ADMIN, NOW) as tx:
        gateways = {g.id: g.name for g in edge_pools.gateways_of(tx, made.public_ip.pool_id)}
        shown = edge_pools.detail(tx, "a/na/egress")
        listed = public_ips.list_of_node(tx, "a/na/a1")
    expected = owner(ipaddress.IPv4Address("30.0.100.50"), gateways)
    assert made.owner is not None and made.owner.id == expected
    assert (made.node.name, made.pool_name, str(made.public_ip.ip)) == (
        "a1",
        "egress",
        "30.0.100.50",
    )
    assert list(shown.public_ips) == listed == [made]
    with store.write(tenant_principal(w.a), NOW) as tx:
        public_ips.remove(tx, "na/a1", "30.0.100.50")
    with store.read(ADMIN, NOW) as tx:
        assert public_ips.list_of_node(tx, "a/na/a1") == []


def add_public(store: Store, node: str, ip: str, pool: str = "egress") -> None:
    with store.write(ADMIN, NOW) as tx:
        public_ips.add(tx, node, pool, ip)


@pytest.mark.parametrize(
    ("node", "pool", "ip", "error", "field", "words"),
    [
        ("a/na/a2", "egress", "30.0.100.1", ConflictError, "ip", "gateway 'e1''s external"),
        ("a/na/a2", "egress", "30.0.100.50", ConflictError, "ip", "node 'a1''s public IP"),
        ("a/na/a1", "egress", "30.0.100.51", ConflictError, "node", "has public IP 30.0.100.50"),
        ("a/na/a2", "egress", "40.0.0.9", InvalidInputError, "ip", "not a host address"),
        ("a/na/a2", "egress", "30.0.255.255", InvalidInputError, "ip", "not a host address"),
        ("a/na/a2", "egress", "30.0.0.0", InvalidInputError, "ip", "not a host address"),
        ("a/na/a2", "egress", "30.0.100", InvalidInputError, "ip", "not an IPv4 address"),
        ("b/nb/b1", "nowhere", "30.0.100.60", InvalidInputError, "edge_pool", "no edge pool"),
        ("b/nb/b1", "a/na/egress", "30.0.100.60", InvalidInputError, "node", "not in edge pool"),
        ("a/na/a2", "bare", "30.0.100.60", InvalidInputError, "edge_pool", "has no gateways"),
    ],
)
def test_bad_public_ips_name_the_field_and_write_nothing(
    world: Setup,
    node: str,
    pool: str,
    ip: str,
    error: type[InvalidInputError],
    field: str,
    words: str,
) -> None:
    store, _ = world
    add_public(store, "a/na/a1", "30.0.100.50")
    with store.write(ADMIN, NOW) as tx:
        edge_pools.create(tx, "bare", "a/na", {})
    with pytest.raises(error, match=words) as caught, store.write(ADMIN, NOW) as tx:
        public_ips.add(tx, node, pool, ip)
    assert caught.value.field == field
    with store.read(ADMIN, NOW) as tx:
        assert len(tx.connection.execute(select(tables.public_ips)).all()) == 1


def test_a_gateway_may_not_take_a_public_ip(world: Setup) -> None:
    store, _ = world
    add_public(store, "a/na/a1", "30.0.100.50")
    refused = pytest.raises(ConflictError, match="is a public IP")
    with refused as caught, store.write(ADMIN, NOW) as tx:
        edge_pools.update_gateway(tx, "a/na/egress", "e2", external_ip="30.0.100.50")
    assert caught.value.field == "external_ip"


def test_public_ips_and_rules_go_with_their_node_and_pool(world: Setup) -> None:
    store, _ = world
    add_public(store, "a/na/a1", "30.0.100.50")
    add_public(store, "a/na/a2", "30.0.100.51")
    with store.write(ADMIN, NOW) as tx:
        edge_rules.add(tx, "a/na/egress", "egress", "deny")
        nodes.delete_node(tx, "a/na/a1")
    with store.read(ADMIN, NOW) as tx:
        left = edge_pools.detail(tx, "a/na/egress").public_ips
        assert [str(p.public_ip.ip) for p in left] == ["30.0.100.51"]
    with store.write(ADMIN, NOW) as tx:
        edge_pools.remove_gateway(tx, "a/na/egress", "e1")
        edge_pools.remove_gateway(tx, "a/na/egress", "e2")
        edge_pools.delete_pool(tx, "a/na/egress")
    with store.read(ADMIN, NOW) as tx:
        assert tx.connection.execute(select(tables.public_ips)).all() == []
        assert tx.connection.execute(select(tables.edge_rules)).all() == []


def test_tenants_manage_only_their_own_public_ips_and_hosts_none(world: Setup) -> None:
    store, w = world
    with pytest.raises(NotFoundError), store.write(tenant_principal(w.b), NOW) as tx:
        public_ips.add(tx, "a/na/a1", "a/na/egress", "30.0.100.50")
    with pytest.raises(ForbiddenError), store.write(host_principal(w.x), NOW) as tx:
        public_ips.add(tx, "a/na/a1", "egress", "30.0.100.50")
    add_public(store, "a/na/a1", "30.0.100.50")
    with pytest.raises(NotFoundError), store.read(tenant_principal(w.b), NOW) as tx:
        public_ips.list_of_node(tx, "a/na/a1")
    missing = pytest.raises(NotFoundError, match=r"no public IP 30\.0\.100\.9")
    with missing, store.write(ADMIN, NOW) as tx:
        public_ips.remove(tx, "a/na/a1", "30.0.100.9")


# --- snapshots and marks ------------------------------------------------------------------------


def marked_and_changed(store: Store, change: Callable[[Tx], object]) -> tuple[set[str], set[str]]:
    """The hosts `change` marked (desired revision moved) and those whose compiled snapshot
    changed (as tests/unit/manager/test_reads.py checks for the other use cases)."""

    def state(tx: Tx) -> tuple[dict[str, object], dict[str, int]]:
        compiled = compiler.compile_all(reads.intent(tx), 0, tx.now)
        names = {h.id: h.name for h in hosts.list_all(tx)}
        marks = {s.host.name: s.desired_revision for s in hosts.statuses(tx)}
        return {names[h]: snap for h, snap in compiled.items()}, marks

    with store.read(ADMIN, NOW) as tx:
        before, marks = state(tx)
    with store.write(ADMIN, NOW) as tx:
        change(tx)
    with store.read(ADMIN, NOW) as tx:
        after, now_marks = state(tx)
    changed = {h for h in after if compiler._content(before.get(h)) != compiler._content(after[h])}  # type: ignore[arg-type]
    return {h for h, r in now_marks.items() if marks.get(h) != r}, changed


def test_each_change_marks_exactly_the_hosts_whose_snapshot_changes(world: Setup) -> None:
    store, _ = world
    rule_ids: list[str] = []

    def add_rule(tx: Tx) -> None:
        rule_ids.append(edge_rules.add(tx, "a/na/egress", "egress", "deny", "tcp", "25").id)

    steps: list[tuple[str, Callable[[Tx], object], set[str]]] = [
        ("rule added", add_rule, {"gw1", "gw2"}),
        ("rule deleted", lambda tx: edge_rules.remove(tx, "a/na/egress", rule_ids[0]),
         {"gw1", "gw2"}),
        ("public ip", lambda tx: public_ips.add(tx, "a/na/a1", "egress", "30.0.100.50"),
         {"gw1", "gw2", "x"}),
        ("gateway drained", lambda tx: edge_pools.update_gateway(
            tx, "a/na/egress", "e1", state="draining"), {"gw1", "gw2", "x", "y"}),
        ("public ip removed", lambda tx: public_ips.remove(tx, "a/na/a1", "30.0.100.50"),
         {"gw1", "gw2", "x"}),
        ("public ip again", lambda tx: public_ips.add(tx, "a/na/a1", "egress", "30.0.100.50"),
         {"gw1", "gw2", "x"}),
        ("node deleted", lambda tx: nodes.delete_node(tx, "a/na/a1"), {"gw1", "gw2", "x", "y"}),
    ]  # fmt: skip
    for label, change, expected in steps:
        marked, changed = marked_and_changed(store, change)
        assert marked == changed == expected, label


def test_snapshots_carry_rules_to_gateways_and_public_ips_to_their_nodes(world: Setup) -> None:
    store, _ = world
    add_public(store, "a/na/a1", "30.0.100.50")
    with store.write(ADMIN, NOW) as tx:
        rule = edge_rules.add(tx, "a/na/egress", "egress", "deny", "tcp", "8080")
    with store.read(ADMIN, NOW) as tx:
        snaps = {name: reads.snapshot(tx, name) for name in ("gw1", "x", "y")}
        gateways = {g.id for g in edge_pools.gateways_of(tx, rule.pool_id)}
    [gw1_view] = snaps["gw1"].edge_pools
    [x_view] = snaps["x"].edge_pools
    [y_view] = snaps["y"].edge_pools
    assert gw1_view.rules == (rule,)
    assert x_view.rules == y_view.rules == ()
    assert [p.node_ip for p in gw1_view.public_ips] == [ipaddress.IPv4Address("10.0.0.11")]
    assert x_view.public_ips == gw1_view.public_ips and y_view.public_ips == ()
    [held] = gw1_view.public_ips
    assert held.owner == owner(ipaddress.IPv4Address("30.0.100.50"), gateways)


def test_rules_and_public_ips_survive_the_wire(world: Setup) -> None:
    """What an agent receives (JSON) decodes to what the manager compiled."""
    store, _ = world
    add_public(store, "a/na/a1", "30.0.100.50")
    with store.write(ADMIN, NOW) as tx:
        edge_rules.add(tx, "a/na/egress", "ingress", "allow", "udp", "1000-2000", "192.0.2.0/24")
        edge_rules.add(tx, "a/na/egress", "egress", "deny", "icmp")
    with store.read(ADMIN, NOW) as tx:
        compiled = reads.snapshot(tx, "gw1")
    wire = schemas.SnapshotOut.model_validate_json(
        codec.encode(schemas.SnapshotOut, compiled).model_dump_json()
    )
    assert codec.snapshot(wire) == compiled
    assert len(compiled.edge_pools[0].rules) == 2 and compiled.edge_pools[0].public_ips
