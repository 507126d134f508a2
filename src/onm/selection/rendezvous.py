"""Rendezvous (highest random weight) hashing: Thaler and Ravishankar, "Using name-based
mappings to increase hit rates", IEEE/ACM ToN 6(1), 1998.

Each (key, candidate) pair gets a pseudo-random weight; a key's ranking is the candidates by
falling weight. A candidate that leaves takes only the keys it was first for (1/N of them),
each of which moves to its own second choice, so the ranking doubles as the ranked list of
alternatives. Chosen over Maglev for pools: members are few (a table of M > 100 x N slots buys
nothing at N = 5), the move on a change is exactly 1/N rather than about it, and the order of
the alternatives comes for free. (Edge pools, with a per-packet lookup, use a Maglev table.)

The weight is BLAKE2b, not Python's `hash`: every manager replica and every run must agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from onm.selection.hashing import digest64


def weight(key: str, candidate: str) -> int:
    """The 64-bit weight of `candidate` for `key`."""
    return digest64(key, candidate)


def rank(key: str, candidates: Iterable[str]) -> list[str]:
    """`candidates` by falling weight for `key` (ties, astronomically rare, by name)."""
    return sorted(candidates, key=lambda c: (-weight(key, c), c))
