"""A computing node: one interface in one network, on one host (seed FIG. 2A)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from onm.model.ids import HostId, NetworkId, NodeId


@dataclass(frozen=True, slots=True)
class Node:
    id: NodeId
    name: str
    network_id: NetworkId
    host_id: HostId
    ip: ipaddress.IPv4Address
    mac: str
    """The virtual MAC the node is known by (locally administered, allocated by the manager)."""
    slot: int
    """The slot field (0..63) of the node's substrate address: 0 for ordinary nodes, which are
    told apart by (network id, IPv4); nodes from before migration 0002 keep theirs."""
    interface: str
    """The host-side interface the agent owns for this node."""
    created_at: dt.datetime
