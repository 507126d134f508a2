"""What the parts of the agent's core share: the tables in force, the counters, the IP ID."""

from __future__ import annotations

from dataclasses import dataclass, field

from onm.agent.claims import Claims
from onm.agent.counters import Counters
from onm.agent.tables import EMPTY, Port, Tables


@dataclass
class CoreState:
    """Mutable, owned by `onm.agent.core.AgentCore`; its parts read it, and only it replaces
    `tables` (when a snapshot is applied)."""

    tables: Tables = EMPTY
    counters: Counters = field(default_factory=Counters)
    identification: int = 0
    """The last IPv4 Identification given to a datagram translated toward a node."""
    claims: Claims = field(init=False)
    """Addresses local nodes use that are not their own (detection)."""
    delivered: dict[tuple[str, bytes], int] = field(default_factory=dict)
    """(member's interface, pool IP) -> packets delivered to it as the pool: its load, and
    for passive liveness whether it was sent anything (onm.agent.health)."""

    def __post_init__(self) -> None:
        self.claims = Claims(self.counters)

    def next_identification(self) -> int:
        self.identification = (self.identification + 1) & 0xFFFF
        return self.identification

    def count_delivery(self, port: Port, packets: int = 1) -> None:
        """Packets sent to `port`: counted when it is a member's port as its pool IP (callers
        on the per-packet paths check `port.pool_sources` first, saving the call)."""
        if port.ip in port.pool_sources:
            key = (port.interface, port.ip)
            self.delivered[key] = self.delivered.get(key, 0) + packets
