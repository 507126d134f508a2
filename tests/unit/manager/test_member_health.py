"""Pool member health in the manager (onm.manager.health): an agent reports only the members it
hosts, a change is an event that reaches the network's hosts, and a member whose agent goes
silent becomes `unknown` after three missed reports (plus a check's interval and timeout)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from onm.errors import ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import events, health, nodes, pools, reads, resolution
from onm.manager.health import MemberReport, stale_after
from onm.manager.store import Store
from onm.model.pool import Health
from onm.model.principal import ADMIN
from support.manager_world import NOW, World, build_world, host_principal


@pytest.fixture
def world() -> Iterator[tuple[Store, World]]:
    store = Store("sqlite://")
    store.migrate()
    yield store, build_world(store)
    store.dispose()


def _members(store: Store, at: dt.datetime = NOW) -> dict[str, Health]:
    with store.read(ADMIN, at) as tx:
        found = pools.detail(tx, "a/na/pa")
    return {d.node.name: d.member.health for d in found.members}


def _report(
    store: Store, world: World, who: str, node: str, state: Health, at: dt.datetime = NOW
) -> None:
    with store.read(ADMIN, at) as tx:
        pool = pools.get(tx, "a/na/pa")
    principal = host_principal(getattr(world, who))
    with store.write(principal, at) as tx:
        health.report(tx, who, [MemberReport(pool.id, getattr(world, node).id, state, 3.0)])


def test_a_change_is_an_event_and_reaches_the_networks_hosts(world: tuple[Store, World]) -> None:
    store, w = world
    with store.read(ADMIN, NOW) as tx:
        before = reads.desired_revision(tx, "y")
    _report(store, w, "x", "a1", Health.DOWN)
    assert _members(store) == {"a1": Health.DOWN}
    with store.read(ADMIN, NOW) as tx:
        assert reads.desired_revision(tx, "y") > before  # y runs a2 in na: it steers
        [event] = [e for e in events.list_since(tx) if e.kind == "pool.member_health"]
        snapshot = reads.snapshot(tx, "y")
    assert (event.data["node"], event.data["from"], event.data["to"]) == ("a1", "up", "down")
    assert [m.health for m in snapshot.pools[0].members] == [Health.DOWN]


def test_the_same_health_again_changes_no_snapshot(world: tuple[Store, World]) -> None:
    store, w = world
    with store.read(ADMIN, NOW) as tx:
        before = reads.desired_revision(tx, "y")
    _report(store, w, "x", "a1", Health.UP)  # a1 is up already (check none)
    with store.read(ADMIN, NOW) as tx:
        assert reads.desired_revision(tx, "y") == before


def test_a_host_reports_only_its_own_members(world: tuple[Store, World]) -> None:
    store, w = world
    with pytest.raises(NotFoundError, match=r"no node|on this host"):
        _report(store, w, "y", "a1", Health.DOWN)  # a1 runs on x
    with store.read(ADMIN, NOW) as tx:
        pool = pools.get(tx, "a/na/pa")
    with (
        pytest.raises((ForbiddenError, NotFoundError)),
        store.write(host_principal(w.y), NOW) as tx,
    ):
        health.report(tx, "x", [MemberReport(pool.id, w.a1.id, Health.DOWN, 0.0)])
    with pytest.raises(InvalidInputError, match="report up or down"):
        _report(store, w, "x", "a1", Health.UNKNOWN)
    assert _members(store) == {"a1": Health.UP}


def test_a_silent_agents_members_become_unknown(world: tuple[Store, World]) -> None:
    store, w = world
    _report(store, w, "x", "a1", Health.UP)
    with store.read(ADMIN, NOW) as tx:
        check = pools.get(tx, "a/na/pa").check
    just_before = NOW + stale_after(check)
    with store.write(ADMIN, just_before) as tx:
        assert health.expire(tx) == 0
    later = just_before + dt.timedelta(seconds=0.1)
    with store.write(ADMIN, later) as tx:
        assert health.expire(tx) == 1
    assert _members(store, later) == {"a1": Health.UNKNOWN}
    _report(store, w, "x", "a1", Health.UP, later)  # the agent is back
    assert _members(store, later) == {"a1": Health.UP}


def test_stale_after_is_three_reports_and_one_check() -> None:
    from onm.model.pool import CheckKind, HealthCheck

    check = HealthCheck(CheckKind.HTTP, 80, "/", 0.5, 0.25, 2, 2)
    assert stale_after(check) == dt.timedelta(seconds=6.75)


def test_least_loaded_sends_a_new_requester_to_the_member_reporting_less_load(
    world: tuple[Store, World],
) -> None:
    """The load each member's agent reports (packets per second delivered to it as the pool)
    decides where `least-loaded` sends the next requester."""
    store, w = world
    with store.write(ADMIN, NOW) as tx:
        nodes.create(tx, "a3", "a/na", "z", "10.0.0.13")
        nodes.create(tx, "a4", "a/na", "x", "10.0.0.14")
        settings = {"policy": "least-loaded", "check": {"kind": "none"}}
        pool = pools.create(tx, "ll", "a/na", "10.0.0.4", settings, ["a2", "a3"]).pool
    with store.read(ADMIN, NOW) as tx:
        members = {d.node.name: d.node.id for d in pools.detail(tx, "a/na/ll").members}

    def load(who: str, node: str, value: float) -> None:
        report = MemberReport(pool.id, members[node], Health.UP, value)
        with store.write(host_principal(getattr(w, who)), NOW) as tx:
            health.report(tx, who, [report])

    def chosen(requester: str) -> str:
        with store.write(host_principal(w.x), NOW) as tx:
            answer = resolution.resolve(tx, "a/na", requester, "10.0.0.4")
        return next(name for name, node_id in members.items() if node_id == answer.target_id)

    load("y", "a2", 900.0)
    load("z", "a3", 10.0)
    assert chosen("a1") == "a3"
    load("z", "a3", 5000.0)  # a3 got busy: the next requester goes to a2
    assert chosen("a4") == "a2"
    with store.read(ADMIN, NOW) as tx:
        shown = {d.node.name: d.member.load for d in pools.detail(tx, "a/na/ll").members}
    assert shown == {"a2": 900.0, "a3": 5000.0}


def test_removing_or_adding_members_evaluates_the_criteria_too(world: tuple[Store, World]) -> None:
    store, _ = world
    action = {"on": "healthy<1", "run": "true"}
    with store.write(ADMIN, NOW) as tx:
        pools.update_pool(tx, "a/na/pa", {"actions": [action]})  # a1 is up (check none)
        pools.add_member(tx, "a/na/pa", "a2")  # 2 healthy: nothing
        pools.remove_member(tx, "a/na/pa", "a1")  # 1 healthy: nothing
    with store.read(ADMIN, NOW) as tx:
        assert not [e for e in events.list_since(tx) if e.kind == "pool.action_queued"]
    with store.write(ADMIN, NOW) as tx:
        pools.remove_member(tx, "a/na/pa", "a2")  # none left healthy: the action is queued
    with store.read(ADMIN, NOW) as tx:
        [queued] = [e for e in events.list_since(tx) if e.kind == "pool.action_queued"]
    assert queued.data["criterion"] == "healthy<1"
