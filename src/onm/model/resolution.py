"""The answer to an address resolution: where a virtual IP lives, as one node sees it, and how
long an answer lives (the manager's `--resolution-ttl`, within `MIN_TTL`..`MAX_TTL`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass
from typing import Final

from onm.errors import InvalidInputError
from onm.model.ids import NetworkId, NodeId, PoolId

RESOLUTION_TTL: Final = dt.timedelta(seconds=300)
"""How long the manager's answers live unless it is told otherwise (`--resolution-ttl`)."""
MIN_TTL: Final = dt.timedelta(seconds=5)
"""The shortest lifetime the manager may give: an agent asks again in an answer's last quarter,
and an eBPF agent looks at what the kernel used once a second (`onm.agent.datapath.ebpf.refresh`),
so a quarter of it must be longer than a second and a packet's gap for a refresh to be in time."""
MAX_TTL: Final = dt.timedelta(days=1)
"""The longest: a moved node's old address is not trusted for longer than a day."""


def ttl(field: str, seconds: float) -> dt.timedelta:
    """`seconds` as a resolution lifetime; refused (naming `field`) outside `MIN_TTL`..`MAX_TTL`."""
    low, high = MIN_TTL.total_seconds(), MAX_TTL.total_seconds()
    if not (math.isfinite(seconds) and low <= seconds <= high):
        raise InvalidInputError(
            field, f"must be between {low:g} and {high:g} seconds, got {seconds:g}"
        )
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Alternative:
    """One pool member a requester may be steered to: where its pool address lives."""

    node_id: NodeId
    substrate_address: ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Resolution:
    network_id: NetworkId
    requester_id: NodeId
    target_ip: ipaddress.IPv4Address
    target_id: NodeId
    substrate_address: ipaddress.IPv6Address
    mac: str
    expires_at: dt.datetime
    pool_id: PoolId | None = None
    """Set when `target_ip` is a pool's: `target_id` is the member selected for the requester
    and `mac` the pool's own."""
    alternatives: tuple[Alternative, ...] = ()
    """A pool's members in this requester's order (the selected one first); the agent moves
    along it as their health changes, with no new question and no new ARP."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a packet's substrate source is where its inner source IP lives (receive check)."""

    valid: bool
    reason: str
    """"ok", or why the source is refused, for the operator."""
    expected: ipaddress.IPv6Address | None
    """The substrate address the source IP lives at, when it lives anywhere."""
