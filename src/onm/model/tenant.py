"""A tenant: the owner of networks, and the unit of visibility for tenant tokens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from onm.model.ids import TenantId


@dataclass(frozen=True, slots=True)
class Tenant:
    id: TenantId
    name: str
    created_at: dt.datetime
