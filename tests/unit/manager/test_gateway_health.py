"""Edge gateway health in the manager (onm.manager.gateway_health) and a pool's rebalance
(onm.manager.edge_pools.rebalance): agents report the gateways they probe or serve, the verdict
follows the module's rules, every change to up or down is an event, and a rebalance bumps the
generation the network's hosts get in their snapshots.

World (`support.manager_world`): network na (tenant a) with a1 on host x and a2 on host y; here
an external network `internet`, edge hosts gw1 and gw2, and pool egress of na with gateways e1
(gw1) and e2 (gw2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from onm.api import schemas as s
from onm.errors import ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import edge_pools, events, externals, gateway_health, hosts, public_ips, reads
from onm.manager.gateway_health import STALE_AFTER, GatewayFigures, Heard, judge
from onm.manager.metrics import ManagerMetrics
from onm.manager.ratelimit import Limits
from onm.manager.store import Store, Tx
from onm.model import Host
from onm.model.edge_pool import Gateway, GatewayState
from onm.model.ids import EdgePoolId, GatewayId, HostId
from onm.model.pool import Health
from onm.model.principal import ADMIN
from support.manager_world import (
    NOW,
    Actor,
    World,
    bearer,
    build_edge,
    build_world,
    host_principal,
    prefix_at,
)
from support.manager_world import tenant_principal as tenant

SECOND = dt.timedelta(seconds=1)


@dataclass
class Edge:
    store: Store
    world: World
    gw1: Host
    gw2: Host
    e1: str
    e2: str

    def report(self, who: Host, at: dt.datetime, **alive: bool) -> None:
        """`who` reports e1/e2 alive or not (with a few figures)."""
        ids = {"e1": self.e1, "e2": self.e2}
        items = [GatewayFigures(ids[n], a, 2, 5, 100, 9000) for n, a in alive.items()]
        with self.store.write(host_principal(who), at) as tx:
            gateway_health.report(tx, who.name, items)

    def health(self, at: dt.datetime) -> dict[str, gateway_health.GatewayHealth]:
        with self.store.read(ADMIN, at) as tx:
            return {g.gateway.name: g for g in gateway_health.view(tx, "a/na/egress")}

    def expire(self, at: dt.datetime) -> int:
        with self.store.write(ADMIN, at) as tx:
            return gateway_health.expire(tx)

    def kinds(self) -> list[tuple[str, str]]:
        with self.store.read(ADMIN, NOW) as tx:
            return [
                (e.kind, e.data["gateway"])
                for e in events.list_since(tx)
                if e.kind.startswith("gateway.")
            ]


@pytest.fixture
def edge() -> Iterator[Edge]:
    store = Store("sqlite://")
    store.migrate()
    world = build_world(store)
    gw1, gw2, e1, e2 = build_edge(store)
    yield Edge(store, world, gw1, gw2, e1, e2)
    store.dispose()


# --- the rule, pure -------------------------------------------------------------------------

GATEWAY = Gateway(
    GatewayId("gw-1"),
    EdgePoolId("ep-1"),
    "e1",
    HostId("h-gw"),
    None,
    GatewayState.ACTIVE,
    NOW,  # type: ignore[arg-type]
)


def heard(host: str, alive: bool, ago: float) -> Heard:
    return Heard(f"h-{host}", host, GatewayFigures("gw-1", alive), NOW - dt.timedelta(seconds=ago))


STALE = STALE_AFTER.total_seconds() + 1
RULES = [
    # (what is heard, seconds since the gateway was made, verdict, said by)
    ([], 0, Health.UNKNOWN, ()),
    ([heard("x", True, 0)], 0, Health.UP, ("x",)),
    ([heard("gw", True, 0)], 0, Health.UP, ("gw",)),
    ([heard("gw", True, 0), heard("x", False, 0)], 0, Health.DOWN, ("x",)),
    ([heard("gw", True, 0), heard("x", False, STALE)], 0, Health.UP, ("gw",)),
    ([heard("gw", True, STALE), heard("x", True, 0)], 0, Health.DOWN, ()),
    ([heard("gw", False, 0)], 0, Health.DOWN, ("gw",)),
    ([], STALE, Health.DOWN, ()),
    ([heard("x", True, 0)], STALE, Health.DOWN, ()),  # its own agent never reported
]


@pytest.mark.parametrize(("said", "age", "health", "by"), RULES)
def test_the_rule(said: list[Heard], age: float, health: Health, by: tuple[str, ...]) -> None:
    gateway = GATEWAY.__class__(
        GATEWAY.id,
        GATEWAY.pool_id,
        GATEWAY.name,
        GATEWAY.host_id,
        GATEWAY.external_ip,
        GATEWAY.state,
        NOW - dt.timedelta(seconds=age),
    )
    verdict = judge(gateway, said, NOW)
    assert (verdict.health, verdict.said_by) == (health, by), verdict.why


# --- reports, verdicts, events ----------------------------------------------------------------


def test_reports_make_gateways_up_and_their_figures_add_up(edge: Edge) -> None:
    x, y = edge.world.x, edge.world.y
    assert {n: g.health for n, g in edge.health(NOW).items()} == {
        "e1": Health.UNKNOWN,
        "e2": Health.UNKNOWN,
    }
    edge.report(edge.gw1, NOW, e1=True)
    edge.report(x, NOW, e1=True, e2=True)
    edge.report(y, NOW, e1=True)
    found = edge.health(NOW)
    e1 = found["e1"]
    assert (e1.health, e1.since, e1.host, e1.why) == (Health.UP, NOW, "gw1", "serving")
    assert [h.host for h in e1.heard] == ["gw1", "x", "y"]
    assert (e1.pinned, e1.flows, e1.packets, e1.bytes) == (6, 15, 300, 27000)
    assert found["e2"].health is Health.UP  # x hears it; gw2 has not reported yet
    assert edge.kinds() == [("gateway.up", "e1"), ("gateway.up", "e2")]


def test_a_prober_that_finds_a_gateway_dead_makes_it_down_and_no_snapshot_changes(
    edge: Edge,
) -> None:
    edge.report(edge.gw1, NOW, e1=True)
    edge.report(edge.world.x, NOW, e1=True)
    with edge.store.read(ADMIN, NOW) as tx:
        before = reads.desired_revision(tx, "x")
    edge.report(edge.world.x, NOW + SECOND, e1=False)
    e1 = edge.health(NOW + SECOND)["e1"]
    assert (e1.health, e1.since) == (Health.DOWN, NOW + SECOND)
    assert e1.why == "not answering the probes of x"
    with edge.store.read(ADMIN, NOW) as tx:
        assert reads.desired_revision(tx, "x") == before  # the agents steer by their probes
        [down] = [e for e in events.list_since(tx) if e.kind == "gateway.down"]
    assert down.data == {
        "pool": "egress",
        "network": "na",
        "gateway": "e1",
        "host": "gw1",
        "from": "up",
        "to": "down",
        "why": "not answering the probes of x",
        "said_by": ["x"],
    }
    assert down.tenant_id == edge.world.a.id
    edge.report(edge.world.x, NOW + 2 * SECOND, e1=True)
    assert edge.health(NOW + 2 * SECOND)["e1"].health is Health.UP
    assert edge.kinds()[-1] == ("gateway.up", "e1")


def test_a_public_ip_moves_off_a_gateway_judged_down_and_back_when_it_is_up(edge: Edge) -> None:
    with edge.store.write(ADMIN, NOW) as tx:
        made = public_ips.add(tx, "a/na/a1", "egress", "30.0.100.50")
    assert made.owner is not None
    holder = made.owner.name
    other = {"e1": "e2", "e2": "e1"}[holder]
    edge.report(edge.gw1, NOW, e1=True)
    edge.report(edge.gw2, NOW, e2=True)
    edge.report(edge.world.x, NOW, e1=True, e2=True)

    def seen(at: dt.datetime) -> tuple[str | None, dict[str, int]]:
        """The owner x's snapshot names, and the desired revisions of the pool's hosts."""
        with edge.store.read(ADMIN, at) as tx:
            [view] = reads.snapshot(tx, "x").edge_pools
            names = {g.gateway.id: g.gateway.name for g in view.gateways}
            [public] = view.public_ips
            revisions = {h: reads.desired_revision(tx, h) for h in ("x", "gw1", "gw2")}
        return (None if public.owner is None else names[public.owner]), revisions

    owner, before = seen(NOW)
    assert owner == holder
    edge.report(edge.world.x, NOW + SECOND, **{holder: False, other: True})
    owner, after = seen(NOW + SECOND)
    assert owner == other  # a survivor holds it while the holder is down
    assert all(after[h] > before[h] for h in before), (before, after)
    with edge.store.read(ADMIN, NOW + SECOND) as tx:
        [shown] = public_ips.list_of_node(tx, "a/na/a1")
    assert shown.owner is not None and shown.owner.name == other  # what `onm node show` says
    edge.report(edge.world.x, NOW + 2 * SECOND, e1=True, e2=True)
    owner, back = seen(NOW + 2 * SECOND)
    assert owner == holder
    assert all(back[h] > after[h] for h in after)


def test_a_gateway_whose_agent_goes_silent_is_down_after_three_missed_reports(
    edge: Edge,
) -> None:
    edge.report(edge.gw1, NOW, e1=True)
    for second in range(0, 7, 2):  # x still hears it (its probes answered by the agent)
        edge.report(edge.world.x, NOW + second * SECOND, e1=True)
        edge.report(edge.gw2, NOW + second * SECOND, e2=True)
    assert edge.expire(NOW + STALE_AFTER) == 0
    assert edge.expire(NOW + STALE_AFTER + SECOND) == 1
    e1 = edge.health(NOW + STALE_AFTER + SECOND)["e1"]
    assert e1.health is Health.DOWN and "silent" in e1.why
    assert edge.expire(NOW + STALE_AFTER + 2 * SECOND) == 0  # one event, not one a second
    assert edge.kinds() == [("gateway.up", "e1"), ("gateway.up", "e2"), ("gateway.down", "e1")]
    edge.report(edge.gw1, NOW + 20 * SECOND, e1=True)
    assert edge.health(NOW + 20 * SECOND)["e1"].health is Health.UP


def test_pinned_flows_count_only_fresh_reports(edge: Edge) -> None:
    edge.report(edge.world.x, NOW, e1=True)
    edge.report(edge.world.y, NOW + STALE_AFTER, e1=True)
    e1 = edge.health(NOW + STALE_AFTER + SECOND)["e1"]
    assert (e1.pinned, e1.flows) == (2, 10)  # x's pins are stale; its flows still count


def test_only_hosts_report_each_for_itself_on_gateways_it_sees(edge: Edge) -> None:
    items = [GatewayFigures(edge.e1, True)]
    with edge.store.write(ADMIN, NOW) as tx, pytest.raises(ForbiddenError, match="host's agent"):
        gateway_health.report(tx, "gw1", items)
    with (
        edge.store.write(tenant(edge.world.a), NOW) as tx,
        pytest.raises(ForbiddenError),
    ):
        gateway_health.report(tx, "x", items)
    with edge.store.write(host_principal(edge.world.x), NOW) as tx, pytest.raises(NotFoundError):
        gateway_health.report(tx, "y", items)
    with edge.store.write(host_principal(edge.world.z), NOW) as tx, pytest.raises(NotFoundError):
        gateway_health.report(tx, "z", items)  # z runs nothing of na
    with (
        edge.store.write(host_principal(edge.world.x), NOW) as tx,
        pytest.raises(NotFoundError, match="no edge gateway"),
    ):
        gateway_health.report(tx, "x", [GatewayFigures("gw-nope", True)])
    with (
        edge.store.write(host_principal(edge.world.x), NOW) as tx,
        pytest.raises(InvalidInputError, match="twice") as caught,
    ):
        gateway_health.report(tx, "x", items * 2)
    assert caught.value.field == "gateway"


def test_tenants_read_their_own_pools_health_and_hosts_none(edge: Edge) -> None:
    with edge.store.read(tenant(edge.world.a), NOW) as tx:
        assert len(gateway_health.view(tx, "na/egress")) == 2
    with edge.store.read(tenant(edge.world.b), NOW) as tx, pytest.raises(NotFoundError):
        gateway_health.view(tx, "a/na/egress")
    with edge.store.read(host_principal(edge.world.x), NOW) as tx, pytest.raises(ForbiddenError):
        gateway_health.view(tx, "a/na/egress")


def test_reports_go_with_their_gateway_pool_and_host(edge: Edge) -> None:
    edge.report(edge.world.x, NOW, e1=True, e2=True)
    edge.report(edge.gw2, NOW, e2=True)
    with edge.store.write(ADMIN, NOW) as tx:
        edge_pools.remove_gateway(tx, "a/na/egress", "e1")
        edge_pools.remove_gateway(tx, "a/na/egress", "e2")
        hosts.delete_host(tx, "gw2")


def test_counts_per_pool(edge: Edge) -> None:
    edge.report(edge.gw1, NOW, e1=True)
    with edge.store.write(ADMIN, NOW) as tx:
        edge_pools.update_gateway(tx, "a/na/egress", "e2", state="draining")
        found = gateway_health.counts(tx)
    assert [(c.tenant, c.network, c.pool, c.up, c.gateways, c.active) for c in found] == [
        ("a", "na", "egress", 1, 2, 1)
    ]


# --- rebalance ----------------------------------------------------------------------------------


def test_a_rebalance_bumps_the_generation_the_networks_hosts_get(edge: Edge) -> None:
    with edge.store.read(ADMIN, NOW) as tx:
        before = reads.desired_revision(tx, "y")
        assert reads.snapshot(tx, "y").edge_pools[0].pool.rebalance == 0
    with edge.store.write(tenant(edge.world.a), NOW) as tx:
        found = edge_pools.rebalance(tx, "na/egress")
    assert found.pool.rebalance == 1
    with edge.store.read(ADMIN, NOW) as tx:
        assert reads.desired_revision(tx, "y") > before
        assert reads.snapshot(tx, "y").edge_pools[0].pool.rebalance == 1
        [event] = [e for e in events.list_since(tx) if e.kind == "edge_pool.rebalanced"]
    assert event.data == {"name": "egress", "network": "na", "rebalance": 1}
    with edge.store.write(tenant(edge.world.b), NOW) as tx, pytest.raises(NotFoundError):
        edge_pools.rebalance(tx, "a/na/egress")
    with edge.store.write(host_principal(edge.world.x), NOW) as tx, pytest.raises(ForbiddenError):
        edge_pools.rebalance(tx, "a/na/egress")


def test_the_managers_metrics_count_gateways_up_per_pool(edge: Edge) -> None:
    edge.report(edge.gw1, NOW, e1=True)
    metrics = ManagerMetrics()
    metrics.watch(edge.store, Limits())
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    labels = 'network="na",pool="egress",tenant="a"'
    assert f"onm_manager_edge_gateways_up{{{labels}}} 1.0" in text
    active = 'network="na",pool="egress",state="active",tenant="a"'
    assert f"onm_manager_edge_gateways{{{active}}} 2.0" in text


# --- load for least-loaded pools --------------------------------------------------------------


def spread_pool(edge: Edge) -> tuple[str, str]:
    """A least-loaded pool `spread` of na beside `egress` (hash): its gateways s1, s2."""
    with edge.store.write(ADMIN, NOW) as tx:
        edge_pools.create(tx, "spread", "a/na", {"choice": "least-loaded"})
        edge_pools.add_gateway(tx, "a/na/spread", "s1", "gw1", "30.0.100.11")
        pool = edge_pools.add_gateway(tx, "a/na/spread", "s2", "gw2", "30.0.100.12")
    s1, s2 = (g.id for g in pool.gateways)
    return s1, s2


def pins(edge: Edge, who: Host, at: dt.datetime, **pinned: int) -> gateway_health.ReportAnswer:
    """`who` reports gateways (by id) alive with flows pinned to each; the manager's answer."""
    items = [GatewayFigures(g, True, n) for g, n in pinned.items()]
    with edge.store.write(host_principal(who), at) as tx:
        return gateway_health.report(tx, who.name, items)


def test_a_report_is_answered_with_the_other_senders_pins_on_least_loaded_pools(
    edge: Edge,
) -> None:
    s1, s2 = spread_pool(edge)
    x, y = edge.world.x, edge.world.y
    first = pins(edge, x, NOW, **{s1: 5, edge.e1: 3})
    assert first.accepted == 2
    assert first.loads == {s1: 0, s2: 0}  # every gateway of the pool; x's own pins not counted
    pins(edge, y, NOW, **{s1: 2, s2: 4, edge.e1: 7})
    pins(edge, edge.gw1, NOW, **{s1: 0})  # the gateway's own agent serves, pins nothing
    assert pins(edge, x, NOW + SECOND, **{s1: 6}).loads == {s1: 2, s2: 4}  # y's; e1 is hashed
    assert pins(edge, y, NOW + SECOND, **{s2: 4}).loads == {s1: 6, s2: 0}  # x's, not its own
    assert pins(edge, x, NOW + SECOND, **{edge.e1: 1}).loads == {}  # no least-loaded pool


def test_stale_reports_add_no_load(edge: Edge) -> None:
    s1, s2 = spread_pool(edge)
    x, y = edge.world.x, edge.world.y
    pins(edge, y, NOW, **{s1: 9})
    assert pins(edge, x, NOW + STALE_AFTER, **{s1: 1}).loads == {s1: 9, s2: 0}
    assert pins(edge, x, NOW + STALE_AFTER + SECOND, **{s1: 1}).loads == {s1: 0, s2: 0}
    heard_of_y = Heard(y.id, "y", GatewayFigures(s1, True, 9), NOW)
    assert gateway_health.others_pinned([heard_of_y], x.id, NOW + STALE_AFTER) == 9
    assert gateway_health.others_pinned([heard_of_y], y.id, NOW) == 0


def test_the_report_route_answers_with_the_loads(
    client: TestClient, world: World, admin: Actor
) -> None:
    def build(tx: Tx) -> list[str]:
        externals.create(tx, "internet", "30.0.0.0/16")
        hosts.create(tx, "gw1", prefix_at(1, rack=9), role="edge", external="internet")
        edge_pools.create(tx, "spread", "a/na", {"choice": "least-loaded"})
        pool = edge_pools.add_gateway(tx, "a/na/spread", "s1", "gw1", "30.0.100.11")
        return [g.id for g in pool.gateways]

    [s1] = admin(build)
    body = {"gateways": [{"gateway": s1, "alive": True, "pinned": 3}]}
    said = client.post("/v1/hosts/y/gateways", json=body, headers=bearer(world.tokens["host_y"]))
    assert (said.status_code, said.json()) == (
        200,
        {"accepted": 1, "loads": [{"gateway": s1, "flows": 0}]},
    )
    answer = client.post(
        "/v1/hosts/x/gateways", json=body, headers=bearer(world.tokens["host_x"])
    ).json()
    assert s.GatewayReportOut.model_validate(answer).loads == [
        s.GatewayLoadOut(gateway=s1, flows=3)
    ]
