"""Least-loaded gateway choice end to end in the lab (issue #10; seed 1: "load-aware selection
(gateways report load)"): one node host loads gateway e1 with pinned flows while e2 drains,
then e2 is active again and a second node host's new flows all go to e2, because the manager
tells h2's agent of the flows h1 pins to e1; `onm edge-pool show --json` counts them where
they went.

    h1: a 10.0.0.2    h2: b 10.0.0.3    gw1, gw2: edge hosts on `internet`
    internet 30.0.0.0/16: web 30.0.2.2 (HTTP: `/` answers the peer's address)
    egress (lnet): e1 30.0.100.1 (gw1), e2 30.0.100.2 (gw2), choice least-loaded, hashed on
    the 5-tuple, probed every 0.2 s; route 0.0.0.0/0 -> egress.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from support.edge_lab import (
    EdgeTopology,
    Network,
    Node,
    Pool,
    PoolTable,
    admin,
    connections,
    edge_lab,
    fetch,
    tcp,
)
from support.overlay_lab import Lab, eventually
from support.pool_testbed import settled

TOPOLOGY = EdgeTopology(
    pools=(Pool(network="lnet", choice="least-loaded"),),
    node_hosts=2,
    nodes=(Node("a", "h1", "10.0.0.2", "lnet"), Node("b", "h2", "10.0.0.3", "lnet")),
    networks=(Network("lnet"),),
)
POOL = "lnet/egress"
E1, E2 = "30.0.100.1", "30.0.100.2"
LOADED = 12
"""Flows node a pins to e1 (TCP pins last 350 s idle: they all stay for the test)."""
BURST = 8


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "ll", TOPOLOGY) as built:
        for node in ("a", "b"):
            eventually(lambda n=node: fetch(built, n) or None, f"{node} reaches web", 15)
        yield built


def shown(lab: Lab) -> dict[str, dict[str, Any]]:
    """Gateway name -> its figures, as `onm edge-pool show --json` gives them."""
    found = json.loads(admin(lab, "edge-pool", "show", POOL, "--json"))
    return {g["name"]: g for g in found["gateway_health"]}


def others_on(lab: Lab, host: str, gateway: str) -> float | None:
    """The flows other senders pin to `gateway`, as `host`'s agent last heard from the manager."""
    key = f'onm_agent_edge_others_pinned_flows{{gateway="{gateway}",pool="egress"}}'
    return lab.metrics(host).get(key)


def test_a_second_hosts_new_flows_go_to_the_gateway_the_first_left_unloaded(lab: Lab) -> None:
    # a loads e1: while e2 drains, every new flow goes to e1, and stays pinned there.
    admin(lab, "edge-pool", "gateway", "set", POOL, "e2", "--state", "draining")
    settled(lab)
    seen = connections(lab, "a", range(46000, 46000 + LOADED))
    assert set(seen.values()) == {E1}, seen
    admin(lab, "edge-pool", "gateway", "set", POOL, "e2", "--state", "active")
    settled(lab)

    # h2's agent hears of h1's pins on e1 with the answer to its next report (every 2 s).
    eventually(
        lambda: (others_on(lab, "h2", "e1") or 0) >= LOADED, "h2 told of h1's load on e1", 10
    )
    assert (others_on(lab, "h2", "e2") or 0) <= 1  # at most a's first fetch

    # b's burst goes to e2 (the hash would have sent about half to e1).
    ports = range(47000, 47000 + BURST)
    burst = connections(lab, "b", ports)
    assert set(burst.values()) == {E2}, burst
    pool = PoolTable.of(lab, POOL)
    hashed = Counter(pool.seen_as(tcp("10.0.0.3", p)) for p in ports)
    print(f"b's {BURST} new flows: all through e2 (by the hash alone: {dict(hashed)})")

    # show counts the pins where they went, by who holds them.
    def counted() -> dict[str, dict[str, Any]] | None:
        found = shown(lab)
        return found if found["e2"]["pinned"] >= BURST else None

    found = eventually(counted, f"show counting {BURST} flows pinned to e2", 10)
    by_host = {g: {h["host"]: h["pinned"] for h in found[g]["heard"]} for g in ("e1", "e2")}
    assert by_host["e1"]["h1"] >= LOADED and by_host["e2"]["h2"] >= BURST, by_host
    assert by_host["e1"].get("h2", 0) <= 1, by_host  # at most b's first fetch

    # b's next burst, told of its own pins at once, spreads over both gateways again.
    spread = connections(lab, "b", range(48000, 48000 + 2 * LOADED))
    assert set(spread.values()) == {E1, E2}, spread
