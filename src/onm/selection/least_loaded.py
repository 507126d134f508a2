"""Least-loaded choice of an edge pool's gateway for a new flow (issue #10; seed 1: "load-aware
selection (gateways report load)"; DESIGN.md section 5).

The load of a gateway is the flows pinned to it now across every sender: what the others
reported to the manager plus the caller's own pins counted this instant, so a burst of new
flows from one sender spreads instead of all taking one gateway (the idea of
`onm.selection.policy`'s least-loaded). Ties go to the flow hash: first to the hash's own
choice (the Maglev entry) when it is among the least loaded, so equally loaded gateways share
flows as `hash` would, then to the rendezvous order of the gateways for the flow's hash, so one
flow gets one answer wherever it is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from onm.selection import rendezvous


def least_loaded(
    candidates: Iterable[str], load: Callable[[str], int], flow_hash: int, hashed: str | None
) -> str | None:
    """The candidate with the least `load`; ties to `hashed` (the hash's choice), then to the
    rendezvous order for `flow_hash`. None: no candidate."""
    key = str(flow_hash)
    return min(
        candidates,
        key=lambda g: (load(g), g != hashed, -rendezvous.weight(key, g), g),
        default=None,
    )
