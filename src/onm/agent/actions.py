"""What the agent's core asks its adapters to do: small typed values, never side effects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ToNode:
    """Send `frame` out of the host-side interface of a local node."""

    interface: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class ToSubstrate:
    """Send an IPv6 `packet` onto the substrate (the kernel routes it by destination)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class Resolve:
    """Ask the manager where `ip` lives for the node behind `interface`."""

    network_id: str
    requester_id: str
    interface: str
    ip: bytes


@dataclass(frozen=True, slots=True)
class Report:
    """Tell the manager which revision is now applied."""

    revision: int


Action = ToNode | ToSubstrate | Resolve | Report
