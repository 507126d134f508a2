"""What one host's agent needs, compiled by the manager at one revision (DESIGN.md section 6).

Plain data, so the agent can turn it into forwarding tables (and the eBPF datapath into maps)
without asking anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from onm.model.host import Host
from onm.model.ids import NetworkId
from onm.model.network import Network
from onm.model.node import Node
from onm.model.pool import PoolView
from onm.model.resolution import Resolution


@dataclass(frozen=True, slots=True)
class Resident:
    """Where a node of one of the host's networks lives: what receiving agents verify against."""

    network_id: NetworkId
    ip: ipaddress.IPv4Address
    substrate_address: ipaddress.IPv6Address
    mac: str
    """Its virtual MAC: the source MAC its packets carry when delivered to a node."""


@dataclass(frozen=True, slots=True)
class LocalNode:
    node: Node
    substrate_address: ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    revision: int
    """The global revision this snapshot reflects."""
    host: Host
    networks: tuple[Network, ...]
    """Every network with a node on this host."""
    nodes: tuple[LocalNode, ...]
    """The nodes this host runs."""
    residents: tuple[Resident, ...]
    """Every node of those networks, wherever it runs (anti-spoofing on receive)."""
    grants: tuple[Resolution, ...]
    pools: tuple[PoolView, ...] = ()
    """Live pools of the host's networks, with their members' health."""
    """Resolutions given to this host's nodes and not yet expired."""
