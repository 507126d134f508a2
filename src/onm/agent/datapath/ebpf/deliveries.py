"""Pool deliveries the kernel made, credited to the core's counts.

`substrate_ingress` (and `node_ingress`, from a node on this host) delivers to a member's pool
address in the kernel and counts each packet per address in `onm_pool_deliveries` (per CPU,
monotonic); `node_ingress` counts what it forwards of a member's port in `onm_member_sent`.
The core counts what it delivers itself in `CoreState.delivered` ((member's interface, pool
IP) -> packets), which passive liveness, the least-loaded load and the reports read; passive
liveness also needs to know a member sent something (`Monitor.seen`). `credit` and `grown`
(pure) turn the kernel's sums into what moved since the last reading; `KernelDeliveries` reads
the maps for the core, on the datapath's timer (`EbpfDatapath._after_batch`).
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


def grown(totals: Mapping[int, int], seen: Mapping[int, int]) -> list[int]:
    """The member ports (ifindex) whose count of forwarded frames moved since `seen`."""
    return [ifindex for ifindex, total in totals.items() if total != seen.get(ifindex, 0)]


class KernelDeliveries:
    """Reads `onm_pool_deliveries` and `onm_member_sent` for the core: what the kernel
    delivered to members as their pool IPs, and which members' ports sent something."""

    def __init__(self, maps: DatapathMaps, adopted: bool) -> None:
        self._maps = maps
        self._seen: Mapping[bytes, int] = {}
        self._sent: Mapping[int, int] = {}
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

    def senders(self, members: Mapping[int, str]) -> list[str]:
        """The interfaces of `members` (ifindex -> interface: the attached member ports) the
        kernel forwarded a frame of since the last reading (the core's `Monitor.seen`); other
        ports' counts are deleted."""
        totals = self._maps.member_sent()
        for ifindex in totals.keys() - members.keys():
            self._maps.forget_member(ifindex)
        now = {ifindex: n for ifindex, n in totals.items() if ifindex in members}
        moved = grown(now, self._sent)
        self._sent = now
        return [members[ifindex] for ifindex in moved]
