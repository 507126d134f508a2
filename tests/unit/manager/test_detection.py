"""Automatic detection of pools (onm.manager.detection; seed 0, DESIGN.md section 4): claims
from agents, refusals, a proposed pool when two nodes claim one address, accept and reject,
and what the network's `auto_pools` says.

World (`support.manager_world`): network na (tenant a) with a1 (10.0.0.11) on host x and a2
(10.0.0.12) on host y; nb (tenant b) on the same CIDR with b1 (10.0.0.11) on y; pool pa on
10.0.0.3 in na.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from onm.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import detection, events, networks, nodes, pools, reads, resolution
from onm.manager.detection import CLAIM_TTL, MAX_CLAIMS_PER_NODE, ClaimReport
from onm.manager.store import Store
from onm.model import Host, Node
from onm.model.pool import PoolState
from onm.model.principal import ADMIN
from support.manager_world import NOW, World, build_world, host_principal, tenant_principal

IP = "10.0.0.50"


@pytest.fixture
def world() -> Iterator[tuple[Store, World]]:
    store = Store("sqlite://")
    store.migrate()
    yield store, build_world(store)
    store.dispose()


def claim(store: Store, host: Host, node: Node, ip: str = IP, at: dt.datetime = NOW) -> str:
    with store.write(host_principal(host), at) as tx:
        [outcome] = detection.report(tx, host.name, [ClaimReport(node.id, ip)])
    return outcome.verdict


def kinds(store: Store) -> list[str]:
    with store.read(ADMIN, NOW) as tx:
        return [e.kind for e in events.list_since(tx)]


def test_two_nodes_claiming_one_address_become_a_proposed_pool(
    world: tuple[Store, World],
) -> None:
    store, w = world
    assert claim(store, w.x, w.a1) == "claimed"
    assert claim(store, w.x, w.a1) == "claimed"  # refreshed, not doubled
    assert "pool.detected" not in kinds(store)
    assert claim(store, w.y, w.a2) == "pool detected-10-0-0-50 (proposed)"
    with store.read(ADMIN, NOW) as tx:
        found = pools.detail(tx, "a/na/detected-10-0-0-50")
        [detected] = [e for e in events.list_since(tx) if e.kind == "pool.detected"]
        snapshot = reads.snapshot(tx, w.y.id)
    assert found.pool.state is PoolState.PROPOSED
    assert sorted(d.node.name for d in found.members) == ["a1", "a2"]
    assert detected.data == {
        "pool": "detected-10-0-0-50",
        "network": "na",
        "ip": IP,
        "members": ["a1", "a2"],
        "state": "proposed",
    }
    assert [p.pool.name for p in snapshot.pools] == ["pa"]  # not live: in no snapshot
    with pytest.raises(NotFoundError), store.write(host_principal(w.x), NOW) as tx:
        resolution.resolve(tx, "a/na", "a1", IP)  # and it resolves to nobody


def test_an_accepted_pool_resolves_and_a_rejected_one_is_not_proposed_again(
    world: tuple[Store, World],
) -> None:
    store, w = world
    claim(store, w.x, w.a1)
    claim(store, w.y, w.a2)
    with store.write(tenant_principal(w.a), NOW) as tx:  # the network's tenant decides
        accepted = detection.accept(tx, "na/detected-10-0-0-50")
    assert accepted.pool.state is PoolState.LIVE
    with store.read(ADMIN, NOW) as tx:
        assert "detected-10-0-0-50" in [p.pool.name for p in reads.snapshot(tx, w.y.id).pools]
    with pytest.raises(ConflictError, match="live already"), store.write(ADMIN, NOW) as tx:
        detection.accept(tx, "a/na/detected-10-0-0-50")
    with pytest.raises(ConflictError, match="only a proposed pool"), store.write(ADMIN, NOW) as tx:
        detection.reject(tx, "a/na/detected-10-0-0-50")

    with store.write(ADMIN, NOW) as tx:
        pools.delete_pool(tx, "a/na/detected-10-0-0-50")
        nodes.create(tx, "a3", "a/na", "x", "10.0.0.13")
    claim(store, w.x, w.a1, "10.0.0.60")
    claim(store, w.y, w.a2, "10.0.0.60")
    with store.write(ADMIN, NOW) as tx:
        rejected = detection.reject(tx, "a/na/detected-10-0-0-60")
        a3 = nodes.get(tx, "a3", "a/na")
    assert rejected.pool.state is PoolState.REJECTED
    assert claim(store, w.x, a3, "10.0.0.60") == "pool detected-10-0-0-60 (rejected)"
    with store.read(ADMIN, NOW) as tx:
        assert len(pools.detail(tx, "a/na/detected-10-0-0-60").members) == 2  # a3 not added
    assert {"pool.accepted", "pool.rejected"} <= set(kinds(store))


def test_a_later_claimer_joins_a_proposal(world: tuple[Store, World]) -> None:
    store, w = world
    with store.write(ADMIN, NOW) as tx:
        a3 = nodes.create(tx, "a3", "a/na", "x", "10.0.0.13")
    claim(store, w.x, w.a1)
    claim(store, w.y, w.a2)
    claim(store, w.x, a3)
    with store.read(ADMIN, NOW) as tx:
        found = pools.detail(tx, "a/na/detected-10-0-0-50")
    assert sorted(d.node.name for d in found.members) == ["a1", "a2", "a3"]


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        ("10.0.0.12", "node 'a2''s own address"),
        ("10.0.0.3", None),  # pool pa's address: a pool, not a refusal
        ("10.0.0.1", "gateway"),
        ("10.0.0.255", "broadcast"),
        ("192.168.7.7", "not inside network 'na'"),
    ],
)
def test_a_node_can_never_claim_what_is_not_free(
    world: tuple[Store, World], ip: str, why: str | None
) -> None:
    store, w = world
    verdict = claim(store, w.x, w.a1, ip)
    if why is None:
        assert verdict == "pool pa (live)"
        return
    assert verdict.startswith("refused: ") and why in verdict, verdict
    assert claim(store, w.y, w.a2, ip).startswith("refused: ")  # two claimers: still no pool
    with store.read(ADMIN, NOW) as tx:
        [seen, _] = [e for e in events.list_since(tx) if e.kind == "ip.claimed"]
        assert [p.pool.name for p in pools.list_all(tx)] == ["pa"]
    assert seen.data["node"] == "a1" and why in str(seen.data["refused"])


def test_claims_in_two_networks_never_meet(world: tuple[Store, World]) -> None:
    store, w = world
    claim(store, w.x, w.a1)
    claim(store, w.y, w.b1)  # nb: same address, another network
    with store.read(ADMIN, NOW) as tx:
        assert [p.pool.name for p in pools.list_all(tx)] == ["pa"]


def test_a_stale_claim_does_not_count(world: tuple[Store, World]) -> None:
    store, w = world
    claim(store, w.x, w.a1)
    later = NOW + CLAIM_TTL + dt.timedelta(seconds=1)
    assert claim(store, w.y, w.a2, at=later) == "claimed"
    assert claim(store, w.x, w.a1, at=later).startswith("pool detected")  # a1 uses it again


@pytest.mark.parametrize(
    ("setting", "state"), [("off", None), ("propose", "proposed"), ("accept", "live")]
)
def test_the_network_setting_says_what_a_detection_becomes(
    world: tuple[Store, World], setting: str, state: str | None
) -> None:
    store, w = world
    with store.write(ADMIN, NOW) as tx:
        assert networks.update(tx, "a/na", setting).auto_pools.value == setting
    claim(store, w.x, w.a1)
    verdict = claim(store, w.y, w.a2)
    assert verdict == ("claimed" if state is None else f"pool detected-10-0-0-50 ({state})")


def test_a_bad_setting_names_the_field(world: tuple[Store, World]) -> None:
    store, _ = world
    with pytest.raises(InvalidInputError, match="auto_pools"), store.write(ADMIN, NOW) as tx:
        networks.update(tx, "a/na", "maybe")


def test_a_host_reports_only_its_own_nodes_and_tenants_report_nothing(
    world: tuple[Store, World],
) -> None:
    store, w = world
    with pytest.raises(NotFoundError, match="on host"):
        claim(store, w.y, w.a1)  # a1 runs on x
    with pytest.raises(NotFoundError), store.write(host_principal(w.y), NOW) as tx:
        detection.report(tx, "x", [ClaimReport(w.a1.id, IP)])  # other hosts are not there
    with pytest.raises(ForbiddenError), store.write(tenant_principal(w.a), NOW) as tx:
        detection.report(tx, "x", [ClaimReport(w.a1.id, IP)])
    with pytest.raises(InvalidInputError, match="ip"):
        claim(store, w.x, w.a1, "not-an-ip")


def test_a_node_holds_a_bounded_number_of_claims(world: tuple[Store, World]) -> None:
    store, w = world
    for k in range(MAX_CLAIMS_PER_NODE):
        claim(store, w.x, w.a1, f"10.0.0.{100 + k}")
    with pytest.raises(InvalidInputError, match="claims 16 addresses already"):
        claim(store, w.x, w.a1, "10.0.0.200")
    later = NOW + CLAIM_TTL + dt.timedelta(seconds=1)  # the old ones went stale: room again
    assert claim(store, w.x, w.a1, "10.0.0.200", at=later) == "claimed"


def test_deleting_a_node_forgets_its_claims(world: tuple[Store, World]) -> None:
    store, w = world
    claim(store, w.x, w.a1)
    with store.write(ADMIN, NOW) as tx:
        nodes.delete_node(tx, w.a1.id)
        assert detection.expire(tx) == 0
    claim(store, w.y, w.a2)
    with store.read(ADMIN, NOW) as tx:
        assert [p.pool.name for p in pools.list_all(tx)] == ["pa"]  # a1's claim went with it
