"""Flow pinning for edge pools (seed 1: a flow keeps its intermediate destination; DESIGN.md
section 5), sans-IO: which gateway each flow of this host's nodes goes through.

- A new flow gets the gateway its hash picks in the pool's Maglev table, built from the
  pool's *active* gateways that are alive; the flow is then pinned to it. In a least-loaded
  pool it gets, among the same gateways, the one with the fewest flows pinned now: the other
  senders' pins (`loads`, as the manager last said) plus this host's own
  (`onm.selection.least_loaded`; ties by the hash).
- A pinned flow stays on its gateway while that gateway is alive, even when the table changes
  (a gateway joining, or one set draining): only flows that must move, move. A flow whose
  gateway died or left is hashed again over the survivors (`rehashed`): its NAT state is lost
  with the gateway, which is counted and documented.
- `rebalance(pool)` drops a pool's pins on purpose, so every flow takes the table's choice.
- Pins end after `IDLE[protocol]` without a packet (TCP 350 s as AWS NAT gateways, UDP 120 s,
  others 60 s), and the table is bounded: the least recently used pin goes first (`evicted`).
- Counted for the metrics and the manager: the pins each gateway holds now (`pinned`, kept as
  pins come and go, so reading it costs nothing), the table choices made (`selections`: a new
  flow, or one moved) and the pins dropped on purpose (`rebalanced`).
Time is `now`; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from onm.model.edge_pool import HashField
from onm.model.ids import EdgePoolId, GatewayId
from onm.packet.ipproto import IpProtocol
from onm.selection import maglev
from onm.selection.flow import Flow, flow_hash
from onm.selection.least_loaded import least_loaded

IDLE: Final[Mapping[int, dt.timedelta]] = {
    IpProtocol.TCP: dt.timedelta(seconds=350),
    IpProtocol.UDP: dt.timedelta(seconds=120),
}
IDLE_OTHER: Final = dt.timedelta(seconds=60)
SHORTEST_IDLE: Final = min(IDLE_OTHER, *IDLE.values())
CAPACITY: Final = 65536


@dataclass(frozen=True, slots=True)
class PoolRoute:
    """What a sending agent knows of one edge pool: its hash fields, the gateways that take
    new flows (its Maglev table, and `takers` in id order) and the ones alive (which keep
    their flows)."""

    id: EdgePoolId
    fields: frozenset[HashField]
    table: Sequence[str]
    alive: frozenset[str]
    takers: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        pool_id: EdgePoolId,
        fields: Collection[HashField],
        active: Iterable[str],
        alive: Iterable[str],
    ) -> PoolRoute:
        living = frozenset(alive)
        takers = tuple(sorted({g for g in active if g in living}))
        return cls(pool_id, frozenset(fields), maglev.build(takers), living, takers)


@dataclass(slots=True)
class Pin:
    gateway: str
    last_seen: dt.datetime


@dataclass(slots=True)
class FlowTable:
    capacity: int = CAPACITY
    pins: OrderedDict[tuple[EdgePoolId, Flow], Pin] = field(default_factory=OrderedDict)
    rehashed: int = 0
    """Flows moved because their gateway died or left (their NAT state went with it)."""
    evicted: int = 0
    expired: int = 0
    split: int = 0
    """Flows of heavy pairs moved to spread them (`spread`)."""
    selections: int = 0
    """Gateways chosen from a table (or at random): for a new flow, or a moved one."""
    rebalanced: int = 0
    """Pins dropped by `rebalance`."""
    pinned: Counter[str] = field(default_factory=Counter)
    """Gateway id -> flows pinned to it now."""

    def gateway_for(
        self,
        route: PoolRoute,
        flow: Flow,
        now: dt.datetime,
        pick: int | None = None,
        spread: Collection[HashField] | None = None,
        loads: Mapping[GatewayId, int] | None = None,
    ) -> str | None:
        """The gateway `flow` goes through now (None: the pool has no live gateway). A new (or
        moved) flow takes the table's entry for its hash, or for `pick` when given (a random
        choice: pinned the same way); with `loads` (a least-loaded pool: the flows the other
        senders pin to each gateway) the least loaded taker counting this table's own pins.
        With `spread` (a heavy pair of a routed pool, `onm.agent.splitting`) the flow is
        hashed on those fields instead, and a pin that disagrees moves there (`split`): a
        routed pool loses no state by it."""
        key = (route.id, flow)
        pin = self.pins.get(key)
        alive = pin is not None and pin.gateway in route.alive
        if pin is not None and alive and spread is None:
            pin.last_seen = now
            self.pins.move_to_end(key)
            return pin.gateway
        fields = route.fields if spread is None else spread
        hashed = flow_hash(flow, fields) if pick is None else pick
        chosen = maglev.lookup(route.table, hashed)
        if loads is not None and spread is None:
            chosen = least_loaded(route.takers, self._load(loads), hashed, chosen)
        if pin is not None and alive:  # spreading a pinned flow
            if chosen is not None and chosen != pin.gateway:
                self.split += 1
                pin.gateway = chosen
            pin.last_seen = now
            self.pins.move_to_end(key)
            return pin.gateway
        if chosen is None:
            return None
        self.selections += 1
        self.pinned[chosen] += 1
        if pin is not None:
            self.rehashed += 1
            self._unpin(pin)
            pin.gateway, pin.last_seen = chosen, now
            self.pins.move_to_end(key)
            return chosen
        while len(self.pins) >= self.capacity:
            self._unpin(self.pins.popitem(last=False)[1])
            self.evicted += 1
        self.pins[key] = Pin(chosen, now)
        return chosen

    def adopt(self, pool_id: EdgePoolId, flow: Flow, gateway: str, now: dt.datetime) -> None:
        """Pin `flow` to `gateway` as another table holds it (the kernel's, on the eBPF
        datapath): the same flow keeps one gateway whichever path its packets take. Not a
        selection; the least recently used pin goes if the table is full."""
        key = (pool_id, flow)
        pin = self.pins.get(key)
        if pin is not None:
            self._unpin(pin)
        else:
            while len(self.pins) >= self.capacity:
                self._unpin(self.pins.popitem(last=False)[1])
                self.evicted += 1
        self.pins[key] = Pin(gateway, now)
        self.pins.move_to_end(key)
        self.pinned[gateway] += 1

    def _load(self, others: Mapping[GatewayId, int]) -> Callable[[str], int]:
        """A gateway's load: the flows the other senders pin to it plus this table's."""
        pinned = self.pinned
        return lambda g: others.get(GatewayId(g), 0) + pinned[g]

    def _unpin(self, pin: Pin) -> None:
        left = self.pinned[pin.gateway] - 1
        if left > 0:
            self.pinned[pin.gateway] = left
        else:
            del self.pinned[pin.gateway]

    def rebalance(self, pool_id: EdgePoolId) -> int:
        """Forget the pool's pins: each flow takes the table's choice at its next packet."""
        gone = [k for k in self.pins if k[0] == pool_id]
        for key in gone:
            self._unpin(self.pins.pop(key))
        self.rebalanced += len(gone)
        return len(gone)

    def expire(self, now: dt.datetime) -> int:
        """Drop pins idle past their protocol's timeout; how many."""
        gone = [
            key
            for key, pin in self.pins.items()
            if now - pin.last_seen >= IDLE.get(key[1].proto, IDLE_OTHER)
        ]
        for key in gone:
            self._unpin(self.pins.pop(key))
        self.expired += len(gone)
        return len(gone)

    def next_timer(self) -> dt.datetime | None:
        """The earliest a pin could expire: the least recently used one's last packet plus the
        shortest timeout (a lower bound: `expire` then drops what is really due)."""
        if not self.pins:
            return None
        return next(iter(self.pins.values())).last_seen + SHORTEST_IDLE
