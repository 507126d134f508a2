"""Splitting (seed 1: "split the load ... across the two or more selected intermediate
destinations"), sans-IO: which source/destination pairs of a routed edge pool (`nat: none`,
`split_above` bits/s) are heavy enough to be spread over several gateways.

A pool that hashes on `src,dst` keeps every flow of one pair on one gateway: right for NAT
(one external address per pair) and for links whose far side expects it, but one busy pair
then fills one link while the others idle. A routed pool holds no per-flow state at the
gateways, so once a pair's rate passes `split_above` its flows are hashed on the whole
5-tuple instead (`SPREAD`): each flow moves to its own gateway at its next packet, and new
ones spread from their first. A single flow is never split over gateways: its packets would
arrive out of order, which TCP takes as loss (the reason ECMP hashes flows, RFC 2992 section 2).

The rate is measured here, at the sender, over fixed windows (`WINDOW`): a pair is heavy
while the bytes of its last complete window are over the threshold. A whole window, not a
part of one: a sender catching up after a stall (a busy host, a paced sender making up lost
time) bursts far above its rate for a moment, which must not split it. Spread flows stay
pinned where they went when the pair slows again (moving them back would gain nothing and
reorder them once more). The meter is bounded (`CAPACITY` pairs; stale pairs go first).
Time is `now`; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

from onm.model.edge_pool import HashField
from onm.model.ids import EdgePoolId

WINDOW: Final = dt.timedelta(seconds=1)
CAPACITY: Final = 65536
SPREAD: Final = frozenset(HashField)
"""The fields a heavy pair's flows are hashed on: all of them."""

Pair = tuple[EdgePoolId, bytes, bytes]
"""(pool, IPv4 source, IPv4 destination)."""


@dataclass(slots=True)
class _Window:
    start: dt.datetime
    bytes: int = 0
    previous: int = 0
    """The bytes of the window before `start`, if it ended right before it (else 0)."""


@dataclass(slots=True)
class PairMeter:
    capacity: int = CAPACITY
    pairs: dict[Pair, _Window] = field(default_factory=dict)
    heavy_seen: int = 0
    """Windows in which a pair was heavy (each pair counted once per window)."""

    def add(self, pair: Pair, size: int, threshold: float, now: dt.datetime) -> bool:
        """Count `size` bytes of `pair`; whether the pair is over `threshold` bits/s now."""
        window = self.pairs.get(pair)
        if window is None:
            if len(self.pairs) >= self.capacity:
                self._forget_stale(now)
            window = self.pairs[pair] = _Window(now)
        elapsed = now - window.start
        if elapsed >= WINDOW:
            ended_now = elapsed < 2 * WINDOW
            window.previous = window.bytes if ended_now else 0
            window.start, window.bytes = now, 0
            if window.previous > _limit(threshold):
                self.heavy_seen += 1
        window.bytes += size
        return window.previous > _limit(threshold)

    def _forget_stale(self, now: dt.datetime) -> None:
        stale = [p for p, w in self.pairs.items() if now - w.start >= 2 * WINDOW]
        for pair in stale or list(self.pairs)[: max(1, len(self.pairs) // 2)]:
            del self.pairs[pair]


def _limit(threshold: float) -> float:
    """The bytes one window holds at `threshold` bits/s."""
    return threshold * WINDOW.total_seconds() / 8
