"""Pool deliveries the kernel made, credited to the core's counts.

`substrate_ingress` delivers to a member's pool address in the kernel and counts each packet
per address in `onm_pool_deliveries` (per CPU, monotonic). The core counts what it delivers
itself in `CoreState.delivered` ((member's interface, pool IP) -> packets), which passive
liveness, the least-loaded load and the reports read. `credit` (pure) turns the kernel's sums
into increments of that, from what was read last; `KernelDeliveries` reads the map for the
core to add (`AgentCore.count_deliveries`), on the datapath's timer (`EbpfDatapath._after_batch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.tables import Tables

DELIVERIES_EVERY: Final = 0.5
"""Seconds between two readings (a passive check's interval is a second or more)."""


@dataclass(frozen=True, slots=True)
class Credit:
    added: Mapping[tuple[str, bytes], int]
    """(member's interface, pool IP) -> packets the kernel delivered since the last reading."""
    seen: Mapping[bytes, int]
    """Pool address -> the kernel's sum now: the next reading's base."""
    stale: tuple[bytes, ...]
    """Addresses counted that are no longer a local member's pool address: to delete."""


def credit(totals: Mapping[bytes, int], seen: Mapping[bytes, int], tables: Tables) -> Credit:
    """What the kernel's sums `totals` add to the core's counts since `seen`; a sum below its
    base is a new entry (deleted and counted again), counted from zero."""
    added: dict[tuple[str, bytes], int] = {}
    now: dict[bytes, int] = {}
    stale = []
    for address, total in totals.items():
        port = tables.by_substrate.get(address)
        if port is None or port.ip not in port.pool_sources:
            stale.append(address)
            continue
        before = seen.get(address, 0)
        grown = total - before if total >= before else total
        now[address] = total
        if grown:
            key = (port.interface, port.ip)
            added[key] = added.get(key, 0) + grown
    return Credit(added, now, tuple(stale))


class KernelDeliveries:
    """Reads `onm_pool_deliveries` into the core's `delivered` counts."""

    def __init__(self, maps: DatapathMaps, adopted: bool) -> None:
        self._maps = maps
        self._seen: Mapping[bytes, int] = {}
        self._base = adopted
        """Adopted maps hold the earlier agent's deliveries: the first reading is the base."""

    def refresh(self, tables: Tables) -> Mapping[tuple[str, bytes], int]:
        """What the kernel delivered since the last reading, for `AgentCore.count_deliveries`;
        counts of addresses `tables` no longer has are deleted."""
        found = credit(self._maps.pool_deliveries(), self._seen, tables)
        for address in found.stale:
            self._maps.forget_deliveries(address)
        self._seen = found.seen
        if self._base:
            self._base = False
            return {}
        return found.added
