"""Maglev consistent hashing for edge pools (Eisenbud et al., "Maglev: A Fast and Reliable
Software Network Load Balancer", NSDI 2016, section 3.4; DESIGN.md section 5).

A lookup table of prime size M > 100 x N entries, each naming a gateway: a flow's hash modulo M
picks its entry, so the per-packet work is one array index, in Python or in an eBPF map. Each
gateway has a permutation of the entries from two hashes of its id (`offset`, `skip`, with
M prime every skip visits every entry); gateways take turns claiming the next free entry of
their permutation until the table is full, so each holds M/N entries within one. Built from
the sorted ids alone, so every agent computes the same table for the same gateways and a flow
gets one gateway wherever it is sent from. When a gateway leaves, its entries go to the others
and a few other entries move too (unlike rendezvous hashing): the agents' flow tables keep
established flows where they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from onm.errors import InvalidInputError
from onm.selection.hashing import digest64

SIZES: Final = (16381, 32749, 65521, 131071)
"""Primes to size a table by (as Cilium's): the smallest that is above 100 x N. The size does
not follow N down: a table that changed size would move nearly every flow, so up to 163
gateways a pool's table is 16381 entries (64 KiB of gateway indexes in a map), whatever N."""
MAX_GATEWAYS: Final = SIZES[-1] // 100


def table_size(gateways: int) -> int:
    """The smallest prime in `SIZES` above 100 x `gateways`."""
    for size in SIZES:
        if size > 100 * gateways:
            return size
    raise InvalidInputError("gateways", f"{gateways} gateways: at most {MAX_GATEWAYS} in a pool")


def permutation(gateway: str, size: int) -> tuple[int, int]:
    """(offset, skip) of `gateway`'s permutation of a table of `size` entries."""
    offset = digest64("maglev-offset", gateway) % size
    skip = digest64("maglev-skip", gateway) % (size - 1) + 1
    return offset, skip


def build(gateways: Iterable[str], size: int | None = None) -> tuple[str, ...]:
    """The lookup table for `gateways` (any order: they are sorted first); empty with none."""
    ids = sorted(set(gateways))
    if not ids:
        return ()
    m = size if size is not None else table_size(len(ids))
    perms = [permutation(g, m) for g in ids]
    taken: list[int] = [-1] * m
    following = [0] * len(ids)
    filled = 0
    while True:
        for i, (offset, skip) in enumerate(perms):
            entry = (offset + following[i] * skip) % m
            while taken[entry] >= 0:
                following[i] += 1
                entry = (offset + following[i] * skip) % m
            taken[entry] = i
            following[i] += 1
            filled += 1
            if filled == m:
                return tuple(ids[t] for t in taken)


def lookup(table: Sequence[str], flow_hash: int) -> str | None:
    """The gateway of the flow with `flow_hash` (None: no gateway at all)."""
    return table[flow_hash % len(table)] if table else None
