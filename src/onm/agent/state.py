"""What the parts of the agent's core share: the tables in force, the counters, the IP ID."""

from __future__ import annotations

from dataclasses import dataclass, field

from onm.agent.counters import Counters
from onm.agent.tables import EMPTY, Tables


@dataclass
class CoreState:
    """Mutable, owned by `onm.agent.core.AgentCore`; its parts read it, and only it replaces
    `tables` (when a snapshot is applied)."""

    tables: Tables = EMPTY
    counters: Counters = field(default_factory=Counters)
    identification: int = 0
    """The last IPv4 Identification given to a datagram translated toward a node."""

    def next_identification(self) -> int:
        self.identification = (self.identification + 1) & 0xFFFF
        return self.identification
