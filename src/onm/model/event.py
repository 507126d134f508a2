"""A recorded change: who did what to which object, at which revision."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from onm.model.ids import EventSeq, TenantId


@dataclass(frozen=True, slots=True)
class Event:
    seq: EventSeq
    revision: int
    at: dt.datetime
    actor: str
    kind: str
    """`<object>.<verb>`, e.g. `network.created`."""
    object_id: str
    tenant_id: TenantId | None
    """The tenant the event belongs to (None: infrastructure, visible to admin only)."""
    data: dict[str, Any] = field(default_factory=dict)
