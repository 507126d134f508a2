"""A host of the substrate: it owns one /64 and runs one agent."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from onm.addressing import HostPrefix, Location
from onm.model.ids import ExternalId, HostId


class HostRole(enum.StrEnum):
    """What a host's agent does (seed 1: an edge host carries traffic to external networks)."""

    NODE = "node"  # runs tenant nodes
    EDGE = "edge"  # a gateway: has an interface on an external network


@dataclass(frozen=True, slots=True)
class Host:
    id: HostId
    name: str
    prefix: HostPrefix
    created_at: dt.datetime
    role: HostRole = HostRole.NODE
    external_id: ExternalId | None = None
    """Edge hosts: the external network their external interface is on."""

    @property
    def location(self) -> Location:
        return self.prefix.location


@dataclass(frozen=True, slots=True)
class HostStatus:
    """How far a host's agent has caught up with what it should have applied."""

    host: Host
    desired_revision: int
    """The revision of the last change that altered this host's snapshot."""
    applied_revision: int
    """The revision the agent last reported as applied (0: never)."""
    last_report_at: dt.datetime | None

    @property
    def lagging(self) -> bool:
        return self.applied_revision < self.desired_revision
