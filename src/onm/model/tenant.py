"""A tenant: the owner of networks, the unit of visibility for tenant tokens, and the holder of
quotas (how many networks and nodes it may hold).

A quota's limit is the tenant's own when an admin set one (`onm tenant set`), else the
manager's default (`onm manager serve --quota-networks/--quota-nodes`). A limit may sit below
what the tenant holds: existing objects stay, new ones are refused (as Kubernetes does when a
ResourceQuota is lowered).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from onm.errors import InvalidInputError
from onm.model.ids import TenantId

MAX_QUOTA = 1_000_000
"""The largest limit a quota may have: far above what one manager serves (a VNI space of 2^24
networks is shared by every tenant), small enough that no limit is a typo for "unlimited"."""


class QuotaKind(enum.StrEnum):
    """What a quota counts."""

    NETWORKS = "networks"
    NODES = "nodes"


def check_quota(field: str, value: int) -> int:
    """`value` if it is a valid limit (a whole number from 0 to MAX_QUOTA), else the error
    naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUOTA:
        raise InvalidInputError(field, f"must be a whole number from 0 to {MAX_QUOTA}")
    return value


@dataclass(frozen=True, slots=True)
class QuotaOverrides:
    """The limits an admin set for one tenant; None: the manager's default applies."""

    networks: int | None = None
    nodes: int | None = None

    def of(self, kind: QuotaKind) -> int | None:
        value: int | None = getattr(self, kind.value)
        return value


@dataclass(frozen=True, slots=True)
class Tenant:
    id: TenantId
    name: str
    created_at: dt.datetime
    quotas: QuotaOverrides = QuotaOverrides()
    """The tenant's own limits (none set by default)."""


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """One quota of one tenant as it stands: its limit, where the limit comes from, the use."""

    kind: QuotaKind
    limit: int
    own: bool
    """True: the tenant's own limit; False: the manager's default."""
    used: int

    @property
    def over(self) -> bool:
        """The tenant holds more than the limit (it was lowered below the use)."""
        return self.used > self.limit


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """A tenant with each of its quotas (in QuotaKind order)."""

    tenant: Tenant
    quotas: tuple[QuotaUse, ...]
