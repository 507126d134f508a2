"""Firewall counts of edge pools in the manager (onm.manager.rule_counts): a gateway's own agent
reports what each rule and default verdict counted; the pool's rules (in its detail and rule
list) show the sum over its gateways, resets are carried, unknown rules ignored, and counts go
with their rule, gateway and host.

World (`support.manager_world`): network na (tenant a); here edge hosts gw1 and gw2 and pool
egress of na with gateways e1 (gw1) and e2 (gw2), and rules deny tcp/25 and allow udp.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from onm.errors import InvalidInputError, NotFoundError
from onm.manager import edge_pools, edge_rules, gateway_health, hosts, tables
from onm.manager.gateway_health import GatewayFigures
from onm.manager.store import Store
from onm.model import Host
from onm.model.principal import ADMIN
from support.manager_world import NOW, World, build_edge, build_world, host_principal
from support.manager_world import tenant_principal as tenant

SECOND = dt.timedelta(seconds=1)
POOL = "a/na/egress"


@dataclass
class Edge:
    store: Store
    world: World
    gw1: Host
    gw2: Host
    e1: str
    e2: str
    deny: str
    allow: str

    def report(
        self,
        who: Host,
        gateway: str,
        rules: dict[str, int],
        defaults: dict[str, int] | None = None,
        at: dt.datetime = NOW,
    ) -> None:
        item = GatewayFigures(
            gateway, True, rules=tuple(rules.items()), defaults=tuple((defaults or {}).items())
        )
        with self.store.write(host_principal(who), at) as tx:
            gateway_health.report(tx, who.name, [item])

    def packets(self, who: object = ADMIN) -> dict[str, int]:
        with self.store.read(who, NOW) as tx:  # type: ignore[arg-type]
            return {r.id: r.packets for r in edge_rules.list_all(tx, POOL)}

    def defaults(self) -> dict[str, int]:
        with self.store.read(ADMIN, NOW) as tx:
            return {d.verdict: d.packets for d in edge_pools.detail(tx, POOL).defaults}

    def rows(self) -> int:
        with self.store.read(ADMIN, NOW) as tx:
            c, d = tables.rule_counts, tables.default_counts
            count = tx.connection.execute(select(func.count()).select_from(c)).scalar_one()
            more = tx.connection.execute(select(func.count()).select_from(d)).scalar_one()
            return int(count) + int(more)


@pytest.fixture
def edge() -> Iterator[Edge]:
    store = Store("sqlite://")
    store.migrate()
    world = build_world(store)
    gw1, gw2, e1, e2 = build_edge(store)
    with store.write(ADMIN, NOW) as tx:
        deny = edge_rules.add(tx, POOL, "egress", "deny", "tcp", "25")
        allow = edge_rules.add(tx, POOL, "egress", "allow", "udp")
    yield Edge(store, world, gw1, gw2, e1, e2, deny.id, allow.id)
    store.dispose()


def test_each_rule_shows_the_sum_over_the_pools_gateways(edge: Edge) -> None:
    assert edge.packets() == {edge.deny: 0, edge.allow: 0}
    edge.report(edge.gw1, edge.e1, {edge.deny: 3, edge.allow: 10}, {"egress-allowed": 7})
    edge.report(edge.gw2, edge.e2, {edge.deny: 2}, {"egress-allowed": 1, "ingress-dropped": 4})
    assert edge.packets() == {edge.deny: 5, edge.allow: 10}
    assert edge.defaults() == {"egress-allowed": 8, "ingress-dropped": 4}
    with edge.store.read(ADMIN, NOW) as tx:
        found = edge_pools.detail(tx, POOL)
    assert [(r.position, r.packets) for r in found.rules] == [(1, 5), (2, 10)]
    assert [d.verdict for d in found.defaults] == ["egress-allowed", "ingress-dropped"]
    edge.report(edge.gw1, edge.e1, {edge.deny: 4}, at=NOW + SECOND)  # the latest word counts
    assert edge.packets()[edge.deny] == 6


def test_a_counter_that_goes_down_was_reset_and_what_it_counted_is_carried(edge: Edge) -> None:
    edge.report(edge.gw1, edge.e1, {edge.deny: 10}, {"ingress-dropped": 5})
    edge.report(edge.gw1, edge.e1, {edge.deny: 4}, {"ingress-dropped": 1})  # agent restarted
    assert (edge.packets()[edge.deny], edge.defaults()) == (14, {"ingress-dropped": 6})
    edge.report(edge.gw1, edge.e1, {edge.deny: 6})
    assert edge.packets()[edge.deny] == 16


def test_rules_the_pool_does_not_have_are_ignored_and_the_report_still_counts(
    edge: Edge,
) -> None:
    with edge.store.write(tenant(edge.world.a), NOW) as tx:
        edge_pools.create(tx, "other", "a/na", {})
        theirs = edge_rules.add(tx, "a/na/other", "egress", "deny")
        gone = edge_rules.add(tx, POOL, "egress", "deny", "udp", "53")
        edge_rules.remove(tx, POOL, gone.id)  # deleted between the agent's read and its report
    rules = {edge.deny: 1, gone.id: 2, theirs.id: 3, "rul-never": 4}
    edge.report(edge.gw1, edge.e1, rules, {"egress-allowed": 5, "from-the-future": 6})
    assert edge.packets() == {edge.deny: 1, edge.allow: 0}
    assert edge.defaults() == {"egress-allowed": 5}
    with edge.store.read(ADMIN, NOW) as tx:
        assert {g.gateway.name: g.health.value for g in gateway_health.view(tx, POOL)}["e1"] == "up"
        assert [r.packets for r in edge_rules.list_all(tx, "a/na/other")] == [0]


def test_only_the_gateways_own_host_gives_counts_each_rule_once(edge: Edge) -> None:
    with pytest.raises(InvalidInputError, match="does not run on this host") as caught:
        edge.report(edge.world.x, edge.e1, {edge.deny: 1})
    assert caught.value.field == "rules"
    with pytest.raises(InvalidInputError, match="does not run on this host"):
        edge.report(edge.gw2, edge.e1, {edge.deny: 1})  # an edge host, another's gateway
    item = GatewayFigures(edge.e1, True, rules=((edge.deny, 1), (edge.deny, 2)))
    with (
        edge.store.write(host_principal(edge.gw1), NOW) as tx,
        pytest.raises(InvalidInputError, match="twice") as twice,
    ):
        gateway_health.report(tx, "gw1", [item])
    assert twice.value.field == "rules"
    assert edge.rows() == 0


def test_tenants_see_the_counts_of_their_own_pools_only(edge: Edge) -> None:
    edge.report(edge.gw1, edge.e1, {edge.deny: 3})
    assert edge.packets(tenant(edge.world.a))[edge.deny] == 3
    with pytest.raises(NotFoundError):
        edge.packets(tenant(edge.world.b))
    with edge.store.read(tenant(edge.world.b), NOW) as tx, pytest.raises(NotFoundError):
        edge_pools.detail(tx, POOL)


def test_counts_go_with_their_rule_gateway_and_host(edge: Edge) -> None:
    edge.report(edge.gw1, edge.e1, {edge.deny: 3, edge.allow: 1}, {"egress-allowed": 2})
    edge.report(edge.gw2, edge.e2, {edge.deny: 5}, {"egress-allowed": 4})
    assert edge.rows() == 5
    with edge.store.write(ADMIN, NOW) as tx:
        edge_rules.remove(tx, POOL, edge.deny)
    assert edge.rows() == 3
    assert edge.packets() == {edge.allow: 1}
    with edge.store.write(ADMIN, NOW) as tx:
        edge_pools.remove_gateway(tx, POOL, "e1")
    assert (edge.rows(), edge.defaults()) == (1, {"egress-allowed": 4})
    with edge.store.write(ADMIN, NOW) as tx:
        edge_pools.remove_gateway(tx, POOL, "e2")
        hosts.delete_host(tx, "gw2")
        edge_pools.delete_pool(tx, POOL)
    assert edge.rows() == 0
