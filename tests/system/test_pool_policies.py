"""Pool selection policies in the lab, driven as a user would (issue #9; seed 0's alternative
destinations): pools made with `onm pool create/set/member add/delete` against the lab's
manager, requesters' real HTTP requests (curl from their namespaces) to the pool IP answered
by whichever member the policy picked (each serves `/whoami.txt` with its name), members'
services stopped and started to make their health checks fail and pass.

`round-robin` hands requesters the members in turn; `random` never hands out a member that
is down; `hash` gives each requester one member, the same after the pool is set or made
again, and the one rendezvous hashing picks; `sticky` keeps a requester on the member it
moved to; `ranked` follows the order members were added, fails over and comes back, and
with `--rotate-seconds` moves requesters on in time. (`nearest` is `test_pools.py`'s;
`least-loaded` waits for reported load.)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from onm.selection import rendezvous
from support.datapaths import lab_name
from support.overlay_lab import Lab, eventually, running_lab
from support.pool_testbed import (
    HTTP_CHECK,
    MEMBERS,
    PORTS,
    REQUESTERS,
    TOPOLOGY,
    Pools,
    Services,
    answer,
    fetch,
    moved_off,
    pools,
    services,
)

__all__ = ["pools", "services"]  # the fixtures


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory, lab_name("ppp", datapath), TOPOLOGY, PORTS, 20) as built:
        yield built


def test_round_robin_hands_out_the_members_in_turn(lab: Lab, pools: Pools) -> None:
    pools.create("rr", ["a", "b"], "--policy", "round-robin", *HTTP_CHECK)
    pools.wait_health("rr", {"a": "up", "b": "up"})
    ip = pools.ip("rr")
    got = [answer(lab, r, ip) for r in REQUESTERS]  # each asks once, in this order
    assert got == ["a", "b", "a", "b"], got  # rank order, one turn per new requester
    assert [answer(lab, r, ip) for r in REQUESTERS] == got  # and each keeps its member
    selections = {m["node"]: m["selections"] for m in pools.show("rr")["members"]}
    assert selections == {"a": 2, "b": 2}


def test_random_never_hands_out_a_member_that_is_down(
    lab: Lab, pools: Pools, services: Services
) -> None:
    pools.create("rnd", MEMBERS, "--policy", "random", *HTTP_CHECK)
    pools.wait_health("rnd", dict.fromkeys(MEMBERS, "up"))
    ip = pools.ip("rnd")
    first = {r: answer(lab, r, ip) for r in ("j", "k")}
    assert set(first.values()) <= set(MEMBERS)
    gone = first["j"]
    services.stop(gone)
    pools.wait_health("rnd", {gone: "down"})
    for requester in REQUESTERS:  # j (and maybe k) move off it; l and m never get it
        assert moved_off(lab, requester, ip, gone) in MEMBERS
        assert gone not in {answer(lab, requester, ip) for _ in range(3)}


def test_hash_gives_each_requester_its_own_member_again_and_again(lab: Lab, pools: Pools) -> None:
    pools.create("hashed", MEMBERS, "--policy", "hash", *HTTP_CHECK)
    pools.wait_health("hashed", dict.fromkeys(MEMBERS, "up"))
    first = {r: answer(lab, r, pools.ip("hashed")) for r in REQUESTERS}
    assert {r: answer(lab, r, pools.ip("hashed")) for r in REQUESTERS} == first

    ids = {name: lab.nodes[name].id for name in (*REQUESTERS, *MEMBERS)}
    names = {node_id: name for name, node_id in ids.items()}
    member_ids = [ids[m] for m in MEMBERS]
    expected = {r: names[rendezvous.rank(ids[r], member_ids)[0]] for r in REQUESTERS}
    assert first == expected  # the pure code's choice (onm.selection.rendezvous)

    pools.set("hashed", "--policy", "hash")
    assert {r: answer(lab, r, pools.ip("hashed")) for r in REQUESTERS} == first

    pools.delete("hashed")  # made again (on an IP of its own): the same choices
    pools.create("rehashed", MEMBERS, "--policy", "hash", *HTTP_CHECK)
    pools.wait_health("rehashed", dict.fromkeys(MEMBERS, "up"))
    assert {r: answer(lab, r, pools.ip("rehashed")) for r in REQUESTERS} == first


def test_sticky_keeps_the_member_failover_moved_it_to(
    lab: Lab, pools: Pools, services: Services
) -> None:
    pools.create("sticky", MEMBERS, "--policy", "sticky", *HTTP_CHECK)
    pools.wait_health("sticky", dict.fromkeys(MEMBERS, "up"))
    ip = pools.ip("sticky")
    first = answer(lab, "j", ip)
    assert [answer(lab, "j", ip) for _ in range(3)] == [first] * 3

    services.stop(first)
    pools.wait_health("sticky", {first: "down"})
    now = moved_off(lab, "j", ip, first)
    assert now in MEMBERS

    services.start(first)
    pools.wait_health("sticky", {first: "up"})  # and j's agent knows it
    assert [answer(lab, "j", ip) for _ in range(5)] == [now] * 5  # and stays where it is


def test_ranked_follows_the_order_members_were_added_then_rotates(
    lab: Lab, pools: Pools, services: Services
) -> None:
    pools.create("ranked", [], "--policy", "ranked", *HTTP_CHECK)
    for node in ("b", "c", "a"):
        pools.add_member("ranked", node)
    ranks = {m["node"]: m["rank"] for m in pools.show("ranked")["members"]}
    assert sorted(ranks, key=ranks.__getitem__) == ["b", "c", "a"]
    pools.wait_health("ranked", dict.fromkeys(MEMBERS, "up"))
    ip = pools.ip("ranked")
    assert answer(lab, "j", ip) == "b"

    services.stop("b")
    eventually(lambda: fetch(lab, "j", ip, 0.5)[0] == "c", "j answered by rank 2 (c)")
    services.start("b")
    eventually(lambda: fetch(lab, "j", ip, 0.5)[0] == "b", "j back on rank 1 (b)")

    key = "onm_agent_pool_rotations_total"
    before = lab.metrics("r")[key]
    pools.set("ranked", "--rotate-seconds", "1")
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 6
    while len(seen) < 3 and time.monotonic() < deadline:
        who = fetch(lab, "j", ip, 0.5)[0]
        if who is not None:
            seen[who] += 1
        time.sleep(0.1)
    assert len(seen) >= 2, seen  # one second's worth each, then the next member leads
    eventually(lambda: lab.metrics("r")[key] > before, "rotations counted", 5)


def test_scope_host_makes_one_choice_for_a_hosts_requesters(lab: Lab, pools: Pools) -> None:
    pools.create("perhost", ["a", "b"], "--policy", "round-robin", "--scope", "host", *HTTP_CHECK)
    pools.wait_health("perhost", {"a": "up", "b": "up"})
    ip = pools.ip("perhost")
    got = {r: answer(lab, r, ip) for r in ("j", "k", "l")}  # all on host r
    assert len(set(got.values())) == 1, got  # one turn taken, for the host
    assert answer(lab, "m", ip) != got["j"]  # host t's choice: the next turn
