"""Pools (seed 0): several nodes of one network share a virtual IP as alternative destinations.

A pool is its own object beside the nodes: each member keeps its own IP, and the pool IP is one
no node owns. Resolving the pool IP selects a member for the requester (`onm.selection`); the
answer carries the ranked alternatives, and the requester's agent moves between them on health
changes with no new ARP, because it answered the ARP with the pool's own virtual MAC.

The enumerations below are the values a user types (`--policy least-loaded`), so each member's
value is its spelling on the command line, in the API and in topology files.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass

from onm.model.ids import HostId, NetworkId, NodeId, PoolId

HEALTH_REPORT_EVERY = 2.0
"""Seconds: an agent reports its members' health at each change and at least this often; the
manager trusts a report for three of these (onm.manager.health)."""


class Policy(enum.StrEnum):
    """How a member is chosen for a requester (DESIGN.md section 4)."""

    NEAREST = "nearest"  # substrate distance: rack < area < locale < elsewhere
    LEAST_LOADED = "least-loaded"  # the load the members' agents report
    ROUND_ROBIN = "round-robin"  # each new choice the next member
    RANDOM = "random"
    HASH = "hash"  # rendezvous hashing on the requester: a change moves 1/N
    STICKY = "sticky"  # keep a requester's earlier member while it is healthy
    RANKED = "ranked"  # the best by rank until it fails (or rotate)


class Scope(enum.StrEnum):
    """Whom one choice is for."""

    REQUESTER = "requester"  # each requesting node
    HOST = "host"  # every requester of a host alike


class AllDown(enum.StrEnum):
    """What traffic to the pool IP does when no member's health allows it."""

    FAIL_CLOSED = "fail-closed"  # ICMP destination unreachable at once
    FAIL_OPEN = "fail-open"  # keep sending to the members regardless


class CheckKind(enum.StrEnum):
    ICMP = "icmp"  # echo request to the member's own address
    TCP = "tcp"  # connect to a port
    HTTP = "http"  # GET a path; 2xx and 3xx pass
    NONE = "none"  # passive only: the member's last packet


class PoolState(enum.StrEnum):
    LIVE = "live"  # resolves to its members
    PROPOSED = "proposed"  # detected (two nodes claim the IP); waits for accept or reject
    REJECTED = "rejected"  # an operator said no; the claims stay spoofed


class Health(enum.StrEnum):
    """A member's health as the manager holds it."""

    INITIAL = "initial"  # new: no passing check yet, gets no traffic
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"  # no fresh report (the reporting agent is silent or gone)

    @property
    def allows_traffic(self) -> bool:
        return self is Health.UP


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """An active check the agent hosting a member runs against the member's own address."""

    kind: CheckKind
    port: int | None
    """TCP and HTTP: the port; None for ICMP and none."""
    path: str
    """HTTP: the path GET asks for."""
    interval: float
    """Seconds between checks."""
    timeout: float
    """Seconds a check may take before it fails."""
    rise: int
    """Passing checks in a row that make a member up."""
    fall: int
    """Failing checks in a row that make a member down."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """`ranked`: move to the next member after this many packets or seconds (None: never)."""

    packets: int | None = None
    seconds: float | None = None


class ActionKind(enum.StrEnum):
    WEBHOOK = "webhook"  # POST a JSON body to a URL, signed, retried with back-off
    RUN = "run"  # run a command on the manager's host, the body on its stdin


COMPARISONS = ("<=", ">=", "==", "<", ">")
"""How a criterion compares the pool's count of healthy members (longest first, to parse)."""


@dataclass(frozen=True, slots=True)
class Criterion:
    """`healthy<2`: a condition on the number of members taking traffic."""

    comparison: str
    value: int

    def holds(self, healthy: int) -> bool:
        return {
            "<": healthy < self.value,
            "<=": healthy <= self.value,
            ">": healthy > self.value,
            ">=": healthy >= self.value,
            "==": healthy == self.value,
        }[self.comparison]

    def __str__(self) -> str:
        return f"healthy{self.comparison}{self.value}"


@dataclass(frozen=True, slots=True)
class PoolAction:
    """What to do when `on` becomes true (once per time it does): seed 0's actions on
    criteria, e.g. start a replacement member."""

    on: Criterion
    kind: ActionKind
    target: str
    """The webhook's URL, or the command line."""
    secret: str | None = None
    """Webhooks: the key of the body's HMAC-SHA256 signature (`X-Onm-Signature`)."""


@dataclass(frozen=True, slots=True)
class Pool:
    id: PoolId
    network_id: NetworkId
    name: str
    ip: ipaddress.IPv4Address
    mac: str
    """The pool's own virtual MAC: the agent answers ARP for the pool IP with it."""
    policy: Policy
    scope: Scope
    all_down: AllDown
    check: HealthCheck
    rotation: Rotation
    state: PoolState
    created_at: dt.datetime
    actions: tuple[PoolAction, ...] = ()


@dataclass(frozen=True, slots=True)
class Member:
    """A node in a pool, with the health its host's agent last reported."""

    pool_id: PoolId
    node_id: NodeId
    host_id: HostId
    rank: int
    """Order for `ranked` (lower first), and the order members were added."""
    health: Health
    since: dt.datetime
    """When the member entered this health."""
    reported_at: dt.datetime | None
    """The last report from its host's agent (None: never)."""
    load: float
    """What its agent reports for `least-loaded`: packets per second to the member."""
    slot: int
    """The slot of its pool address on its host (1..63, U/L set: deliver to slot)."""


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as agents see it: where its pool address lives and whether it takes traffic
    (no load or report times, which change too often to recompile snapshots for)."""

    node_id: NodeId
    host_id: HostId
    substrate_address: ipaddress.IPv6Address
    health: Health


@dataclass(frozen=True, slots=True)
class PoolView:
    """A live pool in a host's snapshot: for requesters there (ARP, steering, replies) and for
    members there (checks, delivery, their replies' source)."""

    pool: Pool
    members: tuple[MemberView, ...]
