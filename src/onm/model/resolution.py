"""The answer to an address resolution: where a virtual IP lives, as one node sees it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from onm.model.ids import NetworkId, NodeId


@dataclass(frozen=True, slots=True)
class Resolution:
    network_id: NetworkId
    requester_id: NodeId
    target_ip: ipaddress.IPv4Address
    target_id: NodeId
    substrate_address: ipaddress.IPv6Address
    mac: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a packet's substrate source is where its inner source IP lives (receive check)."""

    valid: bool
    reason: str
    """"ok", or why the source is refused, for the operator."""
    expected: ipaddress.IPv6Address | None
    """The substrate address the source IP lives at, when it lives anywhere."""
