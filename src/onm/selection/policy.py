"""Pool member selection by policy (DESIGN.md section 4): a ranking of members for a requester.

The first member of the ranking whose health allows traffic is the one selected; the rest are
the alternatives, in the order a requester's agent moves along them when members fail. Members
whose health forbids traffic come last (in their policy order), for `fail-open` to use.

Each policy orders the members; ties fall to rendezvous hashing on the requester, so two
requesters alike in every other respect still spread, and one requester gets one answer:

- nearest: substrate distance from the requester's host (same host < rack < area < locale <
  elsewhere), then the hash;
- least-loaded: the load the caller measured (reported load plus the requesters it has already
  sent there, so a burst of new requesters spreads instead of all picking one member);
- round-robin: rank order, rotated by the pool's turn (the caller advances it per choice);
- random: a shuffle by the caller's draw;
- hash: rendezvous order alone;
- sticky: the requester's previous first member while it allows traffic, then the hash;
- ranked: the members' rank (lower first).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from onm.addressing import HostPrefix, distance
from onm.model.ids import NodeId
from onm.model.pool import Policy
from onm.selection import rendezvous


@dataclass(frozen=True, slots=True)
class Candidate:
    """A member as selection sees it."""

    node_id: NodeId
    host: HostPrefix
    rank: int
    load: float
    usable: bool
    """Its health allows traffic (`Health.allows_traffic`)."""


@dataclass(frozen=True, slots=True)
class Request:
    """Who asks, and the inputs a choice may depend on besides the members."""

    key: str
    """The requester's identity for hashing: its node id, or its host id (scope `host`)."""
    host: HostPrefix
    """Where the requester runs (for `nearest`)."""
    previous: NodeId | None = None
    """The member the requester was given last (for `sticky`)."""
    turn: int = 0
    """The pool's round-robin counter."""
    draw: int = 0
    """A random number from the caller (for `random`)."""


Order = Callable[[Sequence[Candidate], Request, Mapping[NodeId, int]], list[Candidate]]


def _hash_position(candidates: Sequence[Candidate], request: Request) -> dict[NodeId, int]:
    ranked = rendezvous.rank(request.key, (c.node_id for c in candidates))
    return {NodeId(node): at for at, node in enumerate(ranked)}


def _nearest(cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]) -> list[Candidate]:
    return sorted(cs, key=lambda c: (distance(r.host, c.host), hashed[c.node_id]))


def _least_loaded(
    cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]
) -> list[Candidate]:
    return sorted(cs, key=lambda c: (c.load, hashed[c.node_id]))


def _by_rank(cs: Sequence[Candidate]) -> list[Candidate]:
    return sorted(cs, key=lambda c: (c.rank, c.node_id))


def _round_robin(
    cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]
) -> list[Candidate]:
    ordered = _by_rank(cs)
    turn = r.turn % len(ordered) if ordered else 0
    return ordered[turn:] + ordered[:turn]


def _shuffled(cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]) -> list[Candidate]:
    ordered = _by_rank(cs)
    random.Random(r.draw).shuffle(ordered)
    return ordered


def _hash(cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]) -> list[Candidate]:
    return sorted(cs, key=lambda c: hashed[c.node_id])


def _sticky(cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]) -> list[Candidate]:
    kept = [c for c in cs if c.node_id == r.previous and c.usable]
    return kept + [c for c in _hash(cs, r, hashed) if c not in kept]


def _ranked(cs: Sequence[Candidate], r: Request, hashed: Mapping[NodeId, int]) -> list[Candidate]:
    return _by_rank(cs)


ORDERS: Mapping[Policy, Order] = {
    Policy.NEAREST: _nearest,
    Policy.LEAST_LOADED: _least_loaded,
    Policy.ROUND_ROBIN: _round_robin,
    Policy.RANDOM: _shuffled,
    Policy.HASH: _hash,
    Policy.STICKY: _sticky,
    Policy.RANKED: _ranked,
}

RETURNING: frozenset[Policy] = frozenset({Policy.NEAREST, Policy.HASH, Policy.RANKED})
"""Policies whose requesters move back to their first member when it recovers: the ranking
says where they belong. The others keep a requester where failover put it (a move costs its
flows): `sticky` by definition, and the load-spreading ones, whose first choice was only the
best at that moment."""


def select(policy: Policy, candidates: Sequence[Candidate], request: Request) -> list[NodeId]:
    """The ranking of `candidates` for `request`: usable members in policy order, then the rest
    in policy order; for `RETURNING` policies the policy's order itself, health aside (the
    requester is steered to the first usable member in it, and back up it as better members
    recover). Empty when there are no candidates."""
    ordered = ORDERS[policy](candidates, request, _hash_position(candidates, request))
    if policy in RETURNING:
        return [c.node_id for c in ordered]
    usable = [c.node_id for c in ordered if c.usable]
    return usable + [c.node_id for c in ordered if not c.usable]
