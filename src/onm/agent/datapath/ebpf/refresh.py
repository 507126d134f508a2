"""Refreshing the resolutions the kernel uses, sans-IO.

Traffic on the eBPF fast path never reaches the resolver, which refreshes a resolution when a
packet uses it in the last part of its lifetime (`Lifetime.due`, `onm.agent.forwarding`).
Instead `node_ingress` stamps each mapping it forwards with in `MappingValue.used` (monotonic
time in units of 2**`USED_SHIFT` ns), and the agent's timer asks here which resolutions to ask
for again. The rule is the core's, moved from the packet to the timer:

- due: `Lifetime.due`, in the last part of the lifetime it was granted with (expired ones too:
  static stability keeps them while the manager is away);
- used: the program stamped it after it became due (a unit's rounding is allowed for);
- `Resolver.refresh` then keeps `ask`'s pace (`RETRY_AFTER`, refused addresses, pending).

Time is two arguments: `now` (the wall clock of the manager's expiries) and `monotonic_ns`
(the clock `bpf_ktime_get_ns` reads, CLOCK_MONOTONIC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from onm.agent.datapath.ebpf.layout import USED_SHIFT
from onm.agent.resolution import Key, Lifetime
from onm.agent.resolution import Mapping as Resolution

REVIEW_EVERY: Final = dt.timedelta(seconds=1)
"""How often the timer reads the stamps of the due entries (a lookup each)."""


def due(cache: Mapping[Key, Resolution], now: dt.datetime) -> Iterator[Key]:
    """The cached resolutions due for refresh (`Lifetime.due`)."""
    return (key for key, mapping in cache.items() if mapping.lifetime.due(now))


def used_since_due(used: int, lifetime: Lifetime, now: dt.datetime, monotonic_ns: int) -> bool:
    """Did the program stamp `used` (0: never) after the resolution became due, at
    `lifetime.refresh_at`?"""
    if used == 0:
        return False
    since_due = now - lifetime.refresh_at
    became_due = monotonic_ns - max(0, int(since_due.total_seconds() * 1e9))
    return used >= (became_due >> USED_SHIFT)  # the unit it became due in counts


def to_ask(
    cache: Mapping[Key, Resolution],
    stamps: Iterable[tuple[Key, int]],
    now: dt.datetime,
    monotonic_ns: int,
) -> list[Key]:
    """The due resolutions the kernel used since they became due: ask for them again."""
    return [
        key
        for key, used in stamps
        if key in cache and used_since_due(used, cache[key].lifetime, now, monotonic_ns)
    ]
