"""The agent's counters: what its metrics export (packets, bytes, drops by reason, ARP, cache)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from onm.packet.drop import DropReason

# Directions: frames from nodes, frames to nodes, packets from and to the substrate.
DIRECTIONS = ("from_nodes", "to_nodes", "from_substrate", "to_substrate")


@dataclass
class Counters:
    packets: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    drops: Counter[DropReason] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    """Named happenings: arp_answers, arp_gratuitous, resolutions, cache_hits, cache_misses..."""

    def count(self, direction: str, size: int) -> None:
        self.packets[direction] += 1
        self.bytes[direction] += size

    def drop(self, reason: DropReason) -> None:
        self.drops[reason] += 1
