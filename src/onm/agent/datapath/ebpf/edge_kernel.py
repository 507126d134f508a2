"""The kernel's side of edge pools, read back and kept in agreement with the core's.

node_ingress pins the flows it sends (`onm_pins`: pool slot and flow -> gateway slot, serial,
pool generation, last packet) and counts what it sent each gateway (`onm_edge_sent`, per CPU,
by gateway slot; in anycast mode per pool, `onm_anycast_sent`). The core's `FlowTable` pins
the flows that took the slow path. Rules:
- One flow, one gateway: before the core chooses for a flow it does not hold, it asks the
  kernel's pin (`KernelPins.get`: valid only while the gateway's slot still has the pin's
  serial, the pool's generation is the pin's, the gateway is alive and the pin is not idle past
  `onm.agent.flows.IDLE`); every choice the core makes is written into `onm_pins` (`put`), so
  the kernel follows the core for a flow that went slow first.
- The figures the core reports and publishes count both (`figures`): the kernel's pins that
  the core's table does not hold are added to its `pinned`, the kernel's sent counts to its own.
  Read when due (`KernelPins.refresh`), not per packet: the LRU map is read in batches.
- A gateway slot handed to a new gateway (a new serial) has its counts zeroed before the
  gateway's entry is written, so nothing of the slot's last gateway is counted for it.
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.edge_maps import EdgeMaps, pin_key
from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.egress import GatewayCounts
from onm.agent.flows import FlowTable
from onm.errors import OnmError
from onm.model.ids import EdgePoolId, GatewayId
from onm.packet.ipproto import IpProtocol
from onm.selection.flow import Flow

IDLE_NS: Final[dict[int, int]] = {
    IpProtocol.TCP: layout.IDLE_NS["TCP"],
    IpProtocol.UDP: layout.IDLE_NS["UDP"],
}


def monotonic_ns() -> int:
    """`bpf_ktime_get_ns`'s clock (CLOCK_MONOTONIC)."""
    return time.monotonic_ns()


class KernelPins:
    """`onm.agent.egress.PinMirror` over the programs' maps, by the slots `held` (what
    `EdgeSync` last wrote) says."""

    def __init__(
        self,
        maps: DatapathMaps,
        held: Callable[[], EdgeMaps | None],
        clock: Callable[[], int] = monotonic_ns,
    ) -> None:
        self._maps = maps
        self._held = held
        self._clock = clock
        self.errors = 0
        """Map calls that failed (a pin not read or written: the paths may disagree on it)."""

    # --- PinMirror -------------------------------------------------------------------------

    def get(self, pool_id: EdgePoolId, flow: Flow) -> GatewayId | None:
        held = self._held()
        slot = None if held is None else held.pool_slots.get(pool_id)
        if held is None or slot is None:
            return None
        try:
            raw = self._maps["onm_pins"].lookup_raw(
                pin_key(slot, flow), ctypes.sizeof(layout.PinValue)
            )
        except OnmError:
            self.errors += 1
            return None
        if raw is None:
            return None
        value = layout.PinValue.from_buffer_copy(raw)
        return _valid(held, _by_slot(held), slot, flow.proto, value, self._clock())

    def put(self, pool_id: EdgePoolId, flow: Flow, gateway_id: GatewayId) -> None:
        held = self._held()
        if held is None:
            return
        slot = held.pool_slots.get(pool_id)
        gateway = held.gateway_slots.get(gateway_id)
        pool = None if slot is None else held.pools.get(slot)
        if slot is None or gateway is None or pool is None:
            return  # beyond the maps: the kernel sends the pool's flows to the slow path
        value = layout.PinValue(
            gateway=gateway[0],
            serial=gateway[1],
            generation=layout.PoolValue.from_buffer_copy(pool).generation,
            last_seen=self._clock(),
        )
        try:
            self._maps["onm_pins"].update(pin_key(slot, flow), value)
        except OnmError:
            self.errors += 1

    # --- figures ---------------------------------------------------------------------------

    def refresh(self, flows: FlowTable) -> tuple[dict[str, int], dict[GatewayId, GatewayCounts]]:
        """The kernel's pins that `flows` does not hold (gateway -> count) and what the kernel
        sent each gateway."""
        held = self._held()
        if held is None:
            return {}, {}
        return self._pinned(held, flows), self._sent(held)

    def _pinned(self, held: EdgeMaps, flows: FlowTable) -> dict[str, int]:
        pools = {slot: pool for pool, slot in held.pool_slots.items()}
        now = self._clock()
        by_slot = _by_slot(held)
        counted: Counter[str] = Counter()
        try:
            for octets, raw in self._maps["onm_pins"].items():
                key = layout.PinKey.from_buffer_copy(octets)
                pool_id = pools.get(key.pool)
                if pool_id is None:
                    continue
                flow = Flow(bytes(key.src), bytes(key.dst), key.proto, key.sport, key.dport)
                if (pool_id, flow) in flows.pins:
                    continue  # the core's table counts it
                value = layout.PinValue.from_buffer_copy(raw)
                gateway = _valid(held, by_slot, key.pool, key.proto, value, now)
                if gateway is not None:
                    counted[gateway] += 1
        except OnmError:
            self.errors += 1
        return dict(counted)

    def _sent(self, held: EdgeMaps) -> dict[GatewayId, GatewayCounts]:
        found: dict[GatewayId, GatewayCounts] = {}
        try:
            for gateway_id, (slot, _serial) in held.gateway_slots.items():
                total = GatewayCounts()
                for packets, octets, flows in self._maps.edge_sent(slot):
                    total.packets += packets
                    total.bytes += octets
                    total.flows += flows
                if total.packets or total.flows:
                    found[gateway_id] = total
        except OnmError:
            self.errors += 1
        return found

    def anycast_sent(self) -> dict[EdgePoolId, GatewayCounts]:
        """What the kernel sent each anycast pool's shared /64 (`onm_anycast_sent`)."""
        held = self._held()
        found: dict[EdgePoolId, GatewayCounts] = {}
        if held is None:
            return found
        try:
            for pool_id, slot in held.pool_slots.items():
                total = GatewayCounts()
                for packets, octets, _ in self._maps.edge_sent(slot, "onm_anycast_sent"):
                    total.packets += packets
                    total.bytes += octets
                if total.packets:
                    found[pool_id] = total
        except OnmError:
            self.errors += 1
        return found

    def rebalance(self, pool_ids: Sequence[EdgePoolId]) -> int:
        """Delete the kernel's pins of pools rebalanced (`onm edge-pool rebalance`: a new
        generation, which the program would also refuse them for); how many were valid."""
        held = self._held()
        slots = {held.pool_slots[p] for p in pool_ids if p in held.pool_slots} if held else set()
        if held is None or not slots:
            return 0
        by_slot = _by_slot(held)
        now = self._clock()
        dropped = 0
        try:
            for octets, raw in self._maps["onm_pins"].items():
                key = layout.PinKey.from_buffer_copy(octets)
                if key.pool not in slots:
                    continue
                value = layout.PinValue.from_buffer_copy(raw)
                dropped += _valid(held, by_slot, key.pool, key.proto, value, now) is not None
                self._maps["onm_pins"].delete(key)
        except OnmError:
            self.errors += 1
        return dropped

    def zero(self, slots: Sequence[int]) -> None:
        """Forget the counts of gateway `slots` (handed to new gateways)."""
        for slot in slots:
            self._maps.zero_edge_sent(slot)


def _valid(
    held: EdgeMaps,
    by_slot: Mapping[tuple[int, int], GatewayId],
    pool_slot: int,
    proto: int,
    pin: layout.PinValue,
    now: int,
) -> GatewayId | None:
    """The gateway a kernel pin holds its flow to, as node_ingress judges it (edge.h)."""
    pool = held.pools.get(pool_slot)
    gateway = held.gateways.get(pin.gateway)
    if pool is None or gateway is None:
        return None
    if layout.PoolValue.from_buffer_copy(pool).generation != pin.generation:
        return None
    if now - pin.last_seen >= IDLE_NS.get(proto, layout.IDLE_NS["OTHER"]):
        return None
    value = layout.EdgeGatewayValue.from_buffer_copy(gateway)
    if value.serial != pin.serial or value.pool != pool_slot:
        return None
    if not value.flags & layout.EdgeGatewayFlag.ALIVE:
        return None
    return by_slot.get((pin.gateway, pin.serial))


def _by_slot(held: EdgeMaps) -> dict[tuple[int, int], GatewayId]:
    """(gateway slot, serial) -> the gateway."""
    return {where: gateway for gateway, where in held.gateway_slots.items()}
