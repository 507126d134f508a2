"""The answer to an address resolution: where a virtual IP lives, as one node sees it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from onm.model.ids import NetworkId, NodeId, PoolId


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
