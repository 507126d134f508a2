"""The agent's counters: what its metrics export (packets, bytes, drops by reason, events).

Every name a counter can have is a member of an enum here (`Direction`, `Event`; drops use
`onm.packet.drop.DropReason`), so a typo is a type error and `onm.agent.metrics` can export every
counter, zero or not, by walking the enums. The members are `StrEnum`s: they hash and compare as
their value, which is also the label the metrics carry.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from onm.packet.drop import DropReason


class Direction(enum.StrEnum):
    """Where a packet was going: frames from and to nodes, packets from and to the substrate."""

    FROM_NODES = "from_nodes"
    TO_NODES = "to_nodes"
    FROM_SUBSTRATE = "from_substrate"
    TO_SUBSTRATE = "to_substrate"


DIRECTIONS = tuple(Direction)
# The members as plain module names for the per-packet paths: reading a member through its enum
# class costs about 100 ns on Python 3.11, a module global a few.
FROM_NODES: Final = Direction.FROM_NODES
TO_NODES: Final = Direction.TO_NODES
FROM_SUBSTRATE: Final = Direction.FROM_SUBSTRATE
TO_SUBSTRATE: Final = Direction.TO_SUBSTRATE


class Event(enum.StrEnum):
    """Named happenings of the core and the datapath that are not a packet's fate."""

    ARP_ANSWERS = "arp_answers"
    """ARP requests answered for nodes."""
    ARP_PROBES = "arp_probes"
    """Address conflict probes (RFC 5227) from nodes: never answered."""
    ARP_REPLIES_IGNORED = "arp_replies_ignored"
    """ARP replies from nodes (nobody here asked them)."""
    ARP_GRATUITOUS = "arp_gratuitous"
    """Gratuitous ARP (a node announcing itself)."""
    ARP_NOT_ALLOWED = "arp_not_allowed"
    """ARP requests for addresses outside the node's network."""
    ARP_REQUESTS_EXPIRED = "arp_requests_expired"
    """ARP requests dropped unanswered after waiting `ARP_WAIT` for the manager."""
    ARP_ANNOUNCED = "arp_announced"
    """Unsolicited ARP replies to a node that sent to a MAC no answer stands for any more."""
    CACHE_HITS = "cache_hits"
    """ARP requests answered from the resolution cache."""
    CACHE_MISSES = "cache_misses"
    """Lookups that had to ask the manager."""
    CACHE_EXPIRED = "cache_expired"
    """Resolutions forgotten at their expiry while the manager answered (nothing refreshed them)."""
    CACHE_EVICTED = "cache_evicted"
    """Resolutions forgotten, oldest first, to keep the cache within `MAX_RESOLUTIONS`."""
    PENDING_EVICTED = "pending_evicted"
    """Pending requests forgotten, oldest first, to stay within `MAX_PENDING`."""
    REFUSED_EVICTED = "refused_evicted"
    """Refused addresses forgotten, oldest first, to stay within `MAX_REFUSED`."""
    ASKS_RETRIED = "asks_retried"
    """Resolutions asked again by the timer for ARP requests still waiting."""
    RESOLUTIONS = "resolutions"
    """Answers from the manager."""
    RESOLUTIONS_REFUSED = "resolutions_refused"
    """Refusals from the manager (no such address, not allowed)."""
    RESOLUTIONS_FAILED = "resolutions_failed"
    """Resolutions the manager could not be asked (unreachable)."""
    REFRESHES = "refreshes"
    """Resolutions in use asked for again in the last part of their lifetime, before they
    expire (by a packet through the core, or on eBPF by the timer from the kernel's stamps)."""
    POOL_FAILOVERS = "pool_failovers"
    """Requesters moved from one pool member to another (health changed), with no new ARP."""
    POOL_ROTATIONS = "pool_rotations"
    """Requesters of a rotating ranked pool moved on to their next member."""
    CLAIMS_REPORTED = "claims_reported"
    """Addresses a node used that are not its own, reported to the manager (detection)."""
    CLAIMS_IGNORED = "claims_ignored"
    """Such addresses not reported: the node claims too many already."""
    PORTS_LOST = "ports_lost"
    """Node ports closed because their socket failed or their interface vanished."""
    SUBSTRATE_SOCKETS_LOST = "substrate_sockets_lost"
    """Substrate sockets closed (and reopened) because they failed."""


@dataclass
class Counters:
    packets: Counter[Direction] = field(default_factory=Counter)
    bytes: Counter[Direction] = field(default_factory=Counter)
    drops: Counter[DropReason] = field(default_factory=Counter)
    events: Counter[Event] = field(default_factory=Counter)

    def count(self, direction: Direction, size: int) -> None:
        self.packets[direction] += 1
        self.bytes[direction] += size

    def drop(self, reason: DropReason) -> None:
        self.drops[reason] += 1

    def event(self, event: Event, times: int = 1) -> None:
        self.events[event] += times
