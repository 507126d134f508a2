"""A grant: a resolution the manager gave one host, remembered so it can tell that host again.

Seed 0 has the manager know who holds a mapping; a grant is that knowledge as a value, the row
the compiler turns back into a `Resolution` (with where the target lives now) for the host's
snapshot.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from onm.model.ids import HostId, NetworkId, NodeId, PoolId


@dataclass(frozen=True, slots=True)
class Grant:
    network_id: NetworkId
    host_id: HostId
    """The host that asked (it runs the requester when the answer was given)."""
    requester_id: NodeId
    target_ip: ipaddress.IPv4Address
    target_id: NodeId
    """The node the IP was resolved to (a pool's: the member selected first)."""
    expires_at: dt.datetime
    pool_id: PoolId | None = None
    ranking: tuple[NodeId, ...] = ()
    """A pool's members in the order selection gave this requester."""
