"""Pool member selection (DESIGN.md section 4; seed 0's FIG. 2B: J's traffic to 10.0.0.3 goes to
pool member H, nearer than G). Pure: every input is an argument."""

from __future__ import annotations

import collections

import pytest

from onm.addressing import HostPrefix, Location
from onm.model.ids import NodeId
from onm.model.pool import Policy
from onm.selection import rendezvous
from onm.selection.policy import RETURNING, Candidate, Request, select


def host(locale: int, area: int = 0, rack: int = 0, node: int = 0) -> HostPrefix:
    return HostPrefix(Location(locale, area, rack, node))


J_HOST = host(1, 1, 1, 1)


def member(
    name: str, at: HostPrefix, rank: int = 0, load: float = 0, usable: bool = True
) -> Candidate:
    return Candidate(NodeId(name), at, rank, load, usable)


G = member("g", host(2, 1, 1, 1), rank=0)  # another locale
H = member("h", host(1, 1, 2, 1), rank=1)  # J's area, another rack


def test_fig_2b_nearest_picks_h_for_j() -> None:
    assert select(Policy.NEAREST, [G, H], Request("j", J_HOST)) == ["h", "g"]


def test_nearest_ties_fall_to_the_hash_and_spread() -> None:
    same = [member(f"m{i}", host(3)) for i in range(4)]
    firsts = {select(Policy.NEAREST, same, Request(f"r{k}", J_HOST))[0] for k in range(200)}
    assert firsts == {"m0", "m1", "m2", "m3"}


def test_an_unusable_member_is_ranked_last_where_the_policy_does_not_move_back() -> None:
    down_h = member("h", H.host, rank=0, usable=False)
    for policy in (Policy.ROUND_ROBIN, Policy.LEAST_LOADED, Policy.STICKY, Policy.RANDOM):
        assert select(policy, [G, down_h], Request("j", J_HOST))[-1] == "h"


def test_a_returning_policy_ranks_by_its_order_health_aside() -> None:
    """nearest, hash, ranked: the ranking says where a requester belongs; the agent steers it to
    the first usable member and back to a better one when it recovers (issue #9)."""
    down_h = member("h", H.host, rank=1, usable=False)
    assert select(Policy.NEAREST, [G, down_h], Request("j", J_HOST)) == ["h", "g"]
    down_g = member("g", G.host, 0, usable=False)
    assert select(Policy.RANKED, [down_g, H], Request("j", J_HOST)) == ["g", "h"]


def test_no_members_no_ranking() -> None:
    for policy in Policy:
        assert select(policy, [], Request("j", J_HOST)) == []


def test_ranked_orders_by_rank() -> None:
    members = [member("c", J_HOST, 2), member("a", J_HOST, 0), member("b", J_HOST, 1)]
    assert select(Policy.RANKED, members, Request("x", J_HOST)) == ["a", "b", "c"]


def test_round_robin_rotates_with_the_turn() -> None:
    members = [member(n, J_HOST, r) for r, n in enumerate("abc")]
    firsts = [
        select(Policy.ROUND_ROBIN, members, Request("x", J_HOST, turn=t))[0] for t in range(6)
    ]
    assert firsts == ["a", "b", "c", "a", "b", "c"]


def test_random_follows_the_draw_alone() -> None:
    members = [member(n, J_HOST, r) for r, n in enumerate("abcde")]
    one = select(Policy.RANDOM, members, Request("x", J_HOST, draw=42))
    assert one == select(Policy.RANDOM, members, Request("y", J_HOST, draw=42))
    assert sorted(one) == list("abcde")
    assert (
        len(
            {tuple(select(Policy.RANDOM, members, Request("x", J_HOST, draw=d))) for d in range(50)}
        )
        > 10
    )


def test_least_loaded_prefers_the_lightest() -> None:
    members = [
        member("a", J_HOST, load=9),
        member("b", J_HOST, load=1),
        member("c", J_HOST, load=5),
    ]
    assert select(Policy.LEAST_LOADED, members, Request("x", J_HOST)) == ["b", "c", "a"]


def test_sticky_keeps_a_usable_previous_member() -> None:
    members = [member(n, J_HOST) for n in "abcde"]
    for key in ("p", "q", "r"):
        fresh = select(Policy.STICKY, members, Request(key, J_HOST))
        assert fresh == select(Policy.HASH, members, Request(key, J_HOST))  # no history: the hash
        other = next(n for n in "abcde" if n != fresh[0])
        kept = select(Policy.STICKY, members, Request(key, J_HOST, previous=NodeId(other)))
        assert kept[0] == other
        gone = [member(n, J_HOST, usable=n != other) for n in "abcde"]
        assert select(Policy.STICKY, gone, Request(key, J_HOST, previous=NodeId(other)))[0] != other


def test_hash_is_stable_and_moves_one_nth_when_a_member_leaves() -> None:
    """Rendezvous hashing: only the leaver's requesters move, each to its own second choice."""
    members = [member(f"m{i}", J_HOST) for i in range(5)]
    keys = [f"req-{k}" for k in range(2000)]
    before = {k: select(Policy.HASH, members, Request(k, J_HOST)) for k in keys}
    after = {k: select(Policy.HASH, members[:4], Request(k, J_HOST)) for k in keys}
    moved = [k for k in keys if before[k][0] != after[k][0]]
    assert all(before[k][0] == "m4" for k in moved)
    assert all(after[k][0] == before[k][1] for k in moved)
    assert abs(len(moved) / len(keys) - 1 / 5) < 0.03
    spread = collections.Counter(r[0] for r in before.values())
    assert max(spread.values()) / (len(keys) / 5) < 1.15


def test_rendezvous_weight_is_fixed_across_runs() -> None:
    """BLAKE2b, not Python's salted hash: a value computed once, which every replica agrees on."""
    assert rendezvous.weight("j", "h") == rendezvous.weight("j", "h")
    assert rendezvous.weight("a", "b") == int.from_bytes(
        __import__("hashlib").blake2b(b"a\x00b", digest_size=8).digest(), "big"
    )


@pytest.mark.parametrize("policy", list(Policy))
def test_every_policy_ranks_every_member_once(policy: Policy) -> None:
    members = [member(f"m{i}", host(i % 3, i), rank=i, load=i % 2, usable=i != 2) for i in range(6)]
    ranking = select(policy, members, Request("x", J_HOST, previous=NodeId("m3"), turn=4, draw=7))
    assert sorted(ranking) == sorted(c.node_id for c in members)
    if policy not in RETURNING:
        assert ranking[-1] == "m2"  # the one unusable member


def test_returning_policies() -> None:
    assert {Policy.NEAREST, Policy.RANKED, Policy.HASH} == RETURNING
