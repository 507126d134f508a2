"""Edge pools changing under traffic, and two tenants with one CIDR on the same gateways, in the
lab (issue #10; seed 1 FIG. 2C), driven as an operator would: `onm edge-pool gateway add / set
/ remove` as real processes, flows from the nodes to an external server that answers with the
address it saw (each flow's SNAT address, so the gateway it went through).

    h1: a1 10.0.0.2 (net1, tenant t1), a2 10.0.0.2 (net2, tenant t2)
    gw1, gw2, gw3: edge hosts on `internet` 30.0.0.0/16, where web 30.0.2.2 serves HTTP
    net1/out: e1 30.0.100.1 (gw1), e2 30.0.100.2 (gw2); e3 (gw3) joins and leaves live
    net2/out: f1 30.0.200.1 (gw1), f2 30.0.200.2 (gw2)
    both hashed on the 5-tuple, probed every 0.2 s; each network routes 0.0.0.0/0 to its pool.

The tests run in order on one lab, each leaving the pools as the next expects.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from support.edge_lab import (
    EdgeTopology,
    Network,
    Node,
    Pool,
    PoolTable,
    admin,
    connections,
    connections_seen,
    download_result,
    edge_lab,
    fetch,
    start_connections,
    start_download,
    tcp,
)
from support.overlay_lab import Lab, eventually, ip_json

TOPOLOGY = EdgeTopology(
    pools=(
        Pool(name="out", network="net1", nat=None),
        Pool(name="out", network="net2", nat=None, letter="f", subnet="30.0.200"),
    ),
    edge_hosts=3,
    nodes=(Node("a1", "h1", "10.0.0.2", "net1"), Node("a2", "h1", "10.0.0.2", "net2")),
    networks=(Network("net1", "t1"), Network("net2", "t2")),
)
A = "10.0.0.2"
ONE, TWO = "net1/out", "net2/out"
SIZE = 3_000_000
FRESH = itertools.count(50000)
"""Source ports never used before in this module: a new flow each (no pin of its own yet)."""


def fresh(count: int) -> list[int]:
    return [next(FRESH) for _ in range(count)]


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "ec", TOPOLOGY) as built:
        for node in ("a1", "a2"):
            eventually(lambda n=node: fetch(built, n) or None, f"{node} reaches web", 15)
        yield built


def settled(lab: Lab) -> None:
    """Every agent has applied the manager's latest state for its host (the change stream)."""

    def caught_up() -> bool:
        with lab.client() as client:
            status = client.status()
        return all(h.applied_revision >= h.desired_revision for h in status.hosts)

    eventually(caught_up, "every agent applying the manager's revision", 10)


def new_flows(lab: Lab, node: str, pool: PoolTable, count: int = 20) -> dict[int, str]:
    """New flows from `node` once they take `pool`'s table (each try on fresh ports: a flow
    that went elsewhere before its agent had the change stays pinned there)."""

    def follow() -> dict[int, str] | None:
        ports = fresh(count)
        seen = connections(lab, node, ports)
        return seen if seen == {p: pool.seen_as(tcp(A, p)) for p in ports} else None

    return eventually(follow, f"new flows from {node} taking the pool's new table", 15)


def external_addresses(lab: Lab, host: str) -> set[str]:
    return {
        a["local"]
        for link in ip_json(lab.host_ns(host), "-4", "addr", "show")
        for a in link.get("addr_info", [])
        if a["local"].startswith("30.")
    }


def test_two_tenants_with_one_cidr_share_gateways_without_mixing(lab: Lab) -> None:
    one, two = PoolTable.of(lab, ONE), PoolTable.of(lab, TWO)
    assert set(one.host.values()) == set(two.host.values()) == {"gw1", "gw2"}

    def host(pool: PoolTable, port: int) -> str:
        return pool.host[pool.gateway(tcp(A, port))]

    # Source ports whose flow from 10.0.0.2 reaches the same edge host in both tenants: the
    # same 5-tuple, at the same time, in one kernel, told apart only by its conntrack zone.
    ports = [p for p in range(41000, 42000) if host(one, p) == host(two, p)][:24]
    assert {host(one, p) for p in ports} == {"gw1", "gw2"}
    # Each connection waits a second for its answer: all 48 are open at once.
    first = start_connections(lab, "a1", ports, "/?t=1")
    second = start_connections(lab, "a2", ports, "/?t=1")
    seen_one, seen_two = connections_seen(first), connections_seen(second)
    assert seen_one == {p: one.seen_as(tcp(A, p)) for p in ports}, lab.logs()
    assert seen_two == {p: two.seen_as(tcp(A, p)) for p in ports}, lab.logs()
    assert set(seen_one.values()) == {"30.0.100.1", "30.0.100.2"}
    assert set(seen_two.values()) == {"30.0.200.1", "30.0.200.2"}


def test_a_draining_gateway_keeps_its_flows_and_takes_no_new_ones(lab: Lab) -> None:
    pool = PoolTable.of(lab, ONE)
    [port] = fresh(1)
    draining = pool.gateway(tcp(A, port))
    download = start_download(lab, "a1", port, SIZE, 5)
    time.sleep(1)
    shown = admin(
        lab, "edge-pool", "gateway", "set", ONE, pool.name[draining], "--state", "draining"
    )
    assert "draining" in shown
    drained = PoolTable.of(lab, ONE)
    assert draining not in drained.table
    settled(lab)
    seen = new_flows(lab, "a1", drained)
    assert pool.address[draining] not in seen.values()
    # The download through it, begun before, carried on there to its end.
    assert download_result(download) == (SIZE, pool.address[draining])

    admin(lab, "edge-pool", "gateway", "set", ONE, pool.name[draining], "--state", "active")
    settled(lab)
    assert set(new_flows(lab, "a1", PoolTable.of(lab, ONE)).values()) == set(pool.address.values())


def test_a_gateway_added_live_takes_new_flows_while_pinned_ones_stay(lab: Lab) -> None:
    before = PoolTable.of(lab, ONE)
    pinned_ports = fresh(30)
    pinned = connections(lab, "a1", pinned_ports)
    assert pinned == {p: before.seen_as(tcp(A, p)) for p in pinned_ports}
    [port] = fresh(1)
    download = start_download(lab, "a1", port, SIZE, 4)
    time.sleep(0.5)

    shown = admin(
        lab,
        "edge-pool",
        "gateway",
        "add",
        ONE,
        "e3",
        "--host",
        "gw3",
        "--external-ip",
        "30.0.100.3",
    )
    assert "added gateway e3" in shown and "30.0.100.3" in shown
    after = PoolTable.of(lab, ONE)
    e3 = after.by_name("e3")
    settled(lab)
    seen = new_flows(lab, "a1", after)
    assert "30.0.100.3" in seen.values()  # the new gateway takes its share of new flows
    # Flows pinned before it came stay where they were, the ones its table now gives e3 too.
    taken = [p for p in pinned_ports if after.gateway(tcp(A, p)) == e3]
    assert taken, "no pinned flow that the new table gives e3: pick more ports"
    assert connections(lab, "a1", pinned_ports) == pinned
    assert download_result(download) == (SIZE, before.seen_as(tcp(A, port)))


def test_a_removed_gateways_flows_move(lab: Lab) -> None:
    pool = PoolTable.of(lab, ONE)
    e3 = pool.by_name("e3")
    ports = fresh(30)
    seen = connections(lab, "a1", ports)
    assert seen == {p: pool.seen_as(tcp(A, p)) for p in ports}
    on_e3 = [p for p in ports if pool.gateway(tcp(A, p)) == e3]
    others = [p for p in ports if p not in on_e3]
    assert on_e3 and others

    shown = admin(lab, "edge-pool", "gateway", "remove", ONE, "e3")
    assert "removed gateway e3" in shown
    after = PoolTable.of(lab, ONE)
    assert e3 not in after.address
    settled(lab)
    # e3's flows go where the table of the two left gives them; the others stay.
    moved = connections(lab, "a1", on_e3)
    assert moved == {p: after.seen_as(tcp(A, p)) for p in on_e3}, lab.logs()
    assert connections(lab, "a1", others) == {p: seen[p] for p in others}
    # gw3 serves net1 no more: its interface for the network and its address are gone.
    eventually(lambda: not external_addresses(lab, "gw3"), "gw3 giving up 30.0.100.3", 10)
    links = {link["ifname"] for link in ip_json(lab.host_ns("gw3"), "link", "show")}
    assert not {name for name in links if name.startswith("onm-t")}, links


def test_a_changed_external_address_is_what_new_flows_are_seen_from(lab: Lab) -> None:
    pool = PoolTable.of(lab, ONE)
    e1 = pool.by_name("e1")
    shown = admin(lab, "edge-pool", "gateway", "set", ONE, "e1", "--external-ip", "30.0.100.11")
    assert "30.0.100.11" in shown
    after = PoolTable.of(lab, ONE)
    assert after.address[e1] == "30.0.100.11" and after.table == pool.table
    settled(lab)
    seen = new_flows(lab, "a1", after)
    assert set(seen.values()) == {"30.0.100.11", "30.0.100.2"}
    eventually(
        lambda: external_addresses(lab, "gw1") == {"30.0.100.11", "30.0.200.1"},
        "gw1 holding the new address and not the old",
        10,
    )
    # The other tenant's gateway on the same host is untouched.
    two = PoolTable.of(lab, TWO)
    ports = fresh(20)
    assert connections(lab, "a2", ports) == {p: two.seen_as(tcp(A, p)) for p in ports}
