"""Edge pools as the programs' map entries: routes, pool settings, Maglev tables, gateways.

Python decides, BPF looks up (bpf/include/edge.h): `edge_maps` turns the tables and the
gateways' liveness into every edge entry (pure), with each pool's Maglev table built by
`onm.agent.flows.PoolRoute.of` exactly as the core builds it (alive active gateways only), so
the kernel's choice is the core's. Pools and gateways keep their slots across updates (a flow
pinned in `onm_pins` names its gateway's slot), and each gateway has a serial never reused, so
a pin to a gateway that left is not taken for the one given its slot later. `write_edge` writes
what changed into a loaded object's maps, make before break: gateways, then tables, then pool
settings, then routes, then the holders of local nodes' public IPs (`onm_holders`); removals
after, in the reverse order. `read_edge` is its pair: what a
stopped agent left in pinned maps, whose slots and serials `adopt` names after the first
snapshot's pools and gateways, so that a restarted agent keeps the kernel's pins valid.
"""

from __future__ import annotations

import ctypes
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.maps import DatapathMaps, hash_flags
from onm.agent.flows import PoolRoute
from onm.agent.tables import EdgeEntry, NetworkEntry, Tables
from onm.model.edge_pool import Choice, Nat
from onm.model.ids import EdgePoolId, GatewayId
from onm.selection.flow import Flow

K = TypeVar("K")
S = TypeVar("S", bound=ctypes.Structure)
RouteKeyTuple = tuple[int, int, bytes]
"""(vni, prefix length, the prefix's 4 octets)."""
HolderKeyTuple = tuple[int, bytes, int]
"""(vni, a local node's IPv4, pool slot)."""


@dataclass(frozen=True, slots=True)
class EdgeMaps:
    """Every edge entry of the maps for one set of tables and liveness."""

    pool_slots: Mapping[EdgePoolId, int]
    gateway_slots: Mapping[GatewayId, tuple[int, int]]
    """Gateway -> (slot, serial)."""
    next_serial: int
    routes: Mapping[RouteKeyTuple, int]
    """-> a pool slot or `layout.ROUTE_INSIDE` / `ROUTE_NO_POOL` / `ROUTE_SLOW`."""
    pools: Mapping[int, bytes]
    """Pool slot -> its `layout.PoolValue`'s octets."""
    tables: Mapping[int, tuple[int, ...]]
    """Pool slot -> its Maglev table as gateway slots."""
    gateways: Mapping[int, bytes]
    """Gateway slot -> its `layout.EdgeGatewayValue`'s octets."""
    holders: Mapping[HolderKeyTuple, bytes] = field(default_factory=dict)
    """(vni, a local node's IPv4, pool slot) -> its public IP's holder, a
    `layout.HolderValue`'s octets (`Tables.public_owners`)."""


def _slots(previous: Mapping[K, int], wanted: Iterable[K], limit: int) -> dict[K, int]:
    """Slots kept for what stays; the lowest free ones for what is new (in the order given);
    none beyond `limit`."""
    want = list(wanted)
    kept = {k: previous[k] for k in want if k in previous}
    used = set(kept.values())
    free = (s for s in range(limit) if s not in used)
    for k in want:
        if k not in kept:
            slot = next(free, None)
            if slot is None:
                break
            kept[k] = slot
    return kept


CHOICE_FLAGS: dict[Choice, layout.EdgePoolFlag] = {
    Choice.HASH: layout.EdgePoolFlag(0),
    Choice.RANDOM: layout.EdgePoolFlag.RANDOM,
    Choice.LEAST_LOADED: layout.EdgePoolFlag.LEAST_LOADED,
}
"""How a pool's new flows choose, as the program tests it."""


def pool_value(
    pool: EdgeEntry, table_size: int, overflow: bool, direct: bool = False
) -> layout.PoolValue:
    """A pool's settings as the program tests them (`layout.EdgePoolFlag`); `direct`: in
    anycast mode, a gateway is dead or draining (new flows go in direct mode)."""
    flags = layout.EdgePoolFlag(0)
    flags |= CHOICE_FLAGS[pool.choice]
    if pool.split_above is not None and pool.nat is Nat.NONE:
        flags |= layout.EdgePoolFlag.SPLIT
    if pool.anycast is not None:
        flags |= layout.EdgePoolFlag.ANYCAST
        if direct:
            flags |= layout.EdgePoolFlag.DIRECT
    if overflow:
        flags |= layout.EdgePoolFlag.OVERFLOW
    value = layout.PoolValue(
        table_size=0 if overflow else table_size,
        generation=pool.rebalance & 0xFFFFFFFF,
        fields=hash_flags(pool.fields),
        flags=int(flags),
        nat=list(Nat).index(pool.nat),
        mode=list(type(pool.mode)).index(pool.mode),
        choice=list(Choice).index(pool.choice),
    )
    if pool.anycast is not None:
        value.anycast[:] = pool.anycast.to_bytes(8, "big")
    return value


def _inside(network: NetworkEntry, route: ipaddress.IPv4Network) -> bool:
    return any(route.subnet_of(cidr) for cidr in network.cidrs)


def edge_maps(
    tables: Tables, alive: Callable[[GatewayId], bool], previous: EdgeMaps | None = None
) -> EdgeMaps:
    """The edge entries for `tables` with gateways alive as `alive` says (the core's
    `Probes.alive`), keeping `previous`'s slots."""
    pools = sorted(tables.edge_pools.values(), key=lambda p: p.id)
    pool_slots = _slots(
        previous.pool_slots if previous else {}, (p.id for p in pools), layout.POOL_SLOTS
    )
    gateway_ids = [g.id for p in pools if p.id in pool_slots for g in p.gateways.values()]
    old_gateways = previous.gateway_slots if previous else {}
    slots = _slots({g: s for g, (s, _) in old_gateways.items()}, gateway_ids, layout.GATEWAY_SLOTS)
    serial = previous.next_serial if previous else 1
    gateway_slots: dict[GatewayId, tuple[int, int]] = {}
    for gateway_id, slot in slots.items():
        old = old_gateways.get(gateway_id)
        if old is not None and old[0] == slot:
            gateway_slots[gateway_id] = old
        else:
            gateway_slots[gateway_id] = (slot, serial)
            serial += 1

    values: dict[int, bytes] = {}
    maglev_tables: dict[int, tuple[int, ...]] = {}
    gateways: dict[int, bytes] = {}
    for pool in pools:
        pool_slot = pool_slots.get(pool.id)
        if pool_slot is None:
            continue
        members = pool.gateways.values()
        living = [g.id for g in members if alive(g.id)]
        route = PoolRoute.of(pool.id, pool.fields, (g.id for g in members if g.active), living)
        overflow = len(route.table) > layout.MAGLEV_STRIDE or any(
            g.id not in gateway_slots for g in members
        )
        direct = not members or not all(g.active and alive(g.id) for g in members)
        values[pool_slot] = bytes(pool_value(pool, len(route.table), overflow, direct))
        if not overflow:
            maglev_tables[pool_slot] = tuple(gateway_slots[GatewayId(g)][0] for g in route.table)
        for g in members:
            if g.id not in gateway_slots:
                continue
            flags = layout.EdgeGatewayFlag(0)
            if g.id in route.alive:
                flags |= layout.EdgeGatewayFlag.ALIVE
            if g.active:
                flags |= layout.EdgeGatewayFlag.ACTIVE
            slot, gateway_serial = gateway_slots[g.id]
            value = layout.EdgeGatewayValue(
                prefix=(ctypes.c_uint8 * 8).from_buffer_copy(g.prefix_bytes),
                pool=pool_slot,
                serial=gateway_serial,
                flags=int(flags),
            )
            gateways[slot] = bytes(value)

    networks = {port.network.vni: port.network for port in tables.ports.values()}
    routes: dict[RouteKeyTuple, int] = {}
    for vni, entries in tables.routes.items():
        network = networks.get(vni)
        for entry in entries:
            prefix = ipaddress.IPv4Network((entry.network, entry.prefix_length))
            if network is not None and _inside(network, prefix):
                continue  # never taken: the core looks inside the network first
            if entry.pool_id not in tables.edge_pools:
                target = layout.ROUTE_NO_POOL
            else:
                target = pool_slots.get(entry.pool_id, layout.ROUTE_SLOW)
            routes[(vni, entry.prefix_length, prefix.network_address.packed)] = target
    for vni in networks.keys() | tables.routes.keys():  # a miss: a network not written
        routes.setdefault((vni, 0, bytes(4)), layout.ROUTE_NO_POOL)
    for vni, network in networks.items():
        for cidr in network.cidrs:
            routes[(vni, cidr.prefixlen, cidr.network_address.packed)] = layout.ROUTE_INSIDE
    holders: dict[HolderKeyTuple, bytes] = {}
    ports = {port.node_id: port for port in tables.ports.values()}
    for (node_id, pool_id), gateway_id in tables.public_owners.items():
        port, pool_slot = ports.get(node_id), pool_slots.get(pool_id)
        holder = gateway_slots.get(gateway_id)
        if port is not None and pool_slot is not None and holder is not None:
            held = layout.HolderValue(gateway=holder[0], serial=holder[1])
            holders[(port.network.vni, port.ip, pool_slot)] = bytes(held)
    return EdgeMaps(
        pool_slots, gateway_slots, serial, routes, values, maglev_tables, gateways, holders
    )


def rebalanced(held: EdgeMaps, tables: Tables) -> list[EdgePoolId]:
    """The pools written with a generation `tables` has moved past (`onm edge-pool rebalance`)."""
    generations = {p.id: p.rebalance & 0xFFFFFFFF for p in tables.edge_pools.values()}
    return [
        pool_id
        for pool_id, slot in held.pool_slots.items()
        if pool_id in generations
        and slot in held.pools
        and layout.PoolValue.from_buffer_copy(held.pools[slot]).generation != generations[pool_id]
    ]


def route_key(vni: int, length: int, prefix: bytes) -> layout.RouteKey:
    return layout.RouteKey(
        prefixlen=32 + length,
        vni=(ctypes.c_uint8 * 4).from_buffer_copy(vni.to_bytes(4, "big")),
        ip=(ctypes.c_uint8 * 4).from_buffer_copy(prefix),
    )


def holder_key(vni: int, ip: bytes, pool_slot: int) -> layout.HolderKey:
    return layout.HolderKey(vni=vni, ip=(ctypes.c_uint8 * 4).from_buffer_copy(ip), pool=pool_slot)


def pin_key(pool_slot: int, flow: Flow) -> layout.PinKey:
    """`onm_pins`' key of a flow (for reading pins, or mirroring the core's)."""
    return layout.PinKey(
        pool=pool_slot,
        src=(ctypes.c_uint8 * 4).from_buffer_copy(flow.src),
        dst=(ctypes.c_uint8 * 4).from_buffer_copy(flow.dst),
        sport=flow.sport,
        dport=flow.dport,
        proto=flow.proto,
    )


def _value(kind: type[S], octets: bytes) -> S:
    return kind.from_buffer_copy(octets)


def write_edge(maps: DatapathMaps, new: EdgeMaps, old: EdgeMaps | None = None) -> int:
    """Write what differs from `old` (everything when None); the entries written."""
    written = 0
    index = layout.IndexKey
    before_gateways = old.gateways if old else {}
    for slot, octets in new.gateways.items():
        if before_gateways.get(slot) != octets:
            maps["onm_edge_gateways"].update(index(slot), _value(layout.EdgeGatewayValue, octets))
            written += 1
    before_tables = old.tables if old else {}
    for pool_slot, table in new.tables.items():
        was = before_tables.get(pool_slot, ())
        base = pool_slot * layout.MAGLEV_STRIDE
        for i, gateway in enumerate(table):
            if i >= len(was) or was[i] != gateway:
                maps["onm_maglev"].update(index(base + i), layout.MaglevValue(gateway))
                written += 1
    before_pools = old.pools if old else {}
    for pool_slot, octets in new.pools.items():
        if before_pools.get(pool_slot) != octets:
            maps["onm_edge_pools"].update(index(pool_slot), _value(layout.PoolValue, octets))
            written += 1
    before_routes = old.routes if old else {}
    for key, target in new.routes.items():
        if before_routes.get(key) != target:
            maps["onm_routes"].update(route_key(*key), layout.RouteValue(target))
            written += 1
    for key in before_routes.keys() - new.routes.keys():
        maps["onm_routes"].delete(route_key(*key))
        written += 1
    before_holders = old.holders if old else {}
    for holder, octets in new.holders.items():
        if before_holders.get(holder) != octets:
            maps["onm_holders"].update(holder_key(*holder), _value(layout.HolderValue, octets))
            written += 1
    for holder in before_holders.keys() - new.holders.keys():
        maps["onm_holders"].delete(holder_key(*holder))
        written += 1
    for pool_slot in before_pools.keys() - new.pools.keys():
        maps["onm_edge_pools"].update(index(pool_slot), layout.PoolValue())
        written += 1
    for slot in before_gateways.keys() - new.gateways.keys():
        maps["onm_edge_gateways"].update(index(slot), layout.EdgeGatewayValue())
        written += 1
    return written


def read_edge(maps: DatapathMaps) -> EdgeMaps:
    """The edge entries the maps hold, without the ids the slots stand for (`adopt` finds
    them) nor the Maglev tables (a pool's is written whole once more, to the same values where
    its gateways stayed: cheaper than reading a million entries back); the next serial is past
    every serial found."""
    gateways = {
        _index(key): value
        for key, value in maps["onm_edge_gateways"].entries().items()
        if layout.EdgeGatewayValue.from_buffer_copy(value).serial
    }
    pools = {
        _index(key): value
        for key, value in maps["onm_edge_pools"].entries().items()
        if value != bytes(layout.PoolValue())
    }
    routes: dict[RouteKeyTuple, int] = {}
    for key, value in maps["onm_routes"].entries().items():
        route = layout.RouteKey.from_buffer_copy(key)
        vni = int.from_bytes(bytes(route.vni), "big")
        routes[(vni, route.prefixlen - 32, bytes(route.ip))] = layout.RouteValue.from_buffer_copy(
            value
        ).pool
    holders: dict[HolderKeyTuple, bytes] = {}
    for key, value in maps["onm_holders"].entries().items():
        holder = layout.HolderKey.from_buffer_copy(key)
        holders[(int(holder.vni), bytes(holder.ip), int(holder.pool))] = value
    serials = [layout.EdgeGatewayValue.from_buffer_copy(v).serial for v in gateways.values()]
    return EdgeMaps({}, {}, max(serials, default=0) + 1, routes, pools, {}, gateways, holders)


def adopt(found: EdgeMaps, tables: Tables) -> EdgeMaps:
    """`found` (`read_edge`) with its pool and gateway slots named after `tables`: a pool takes
    the slot whose gateways share most /64s with its own (none shared: a new slot), and each of
    its gateways found there keeps its slot and serial."""
    at: dict[int, dict[bytes, tuple[int, int]]] = {}
    for slot, octets in found.gateways.items():
        value = layout.EdgeGatewayValue.from_buffer_copy(octets)
        at.setdefault(value.pool, {})[bytes(value.prefix)] = (slot, value.serial)
    pool_slots: dict[EdgePoolId, int] = {}
    gateway_slots: dict[GatewayId, tuple[int, int]] = {}
    for pool in sorted(tables.edge_pools.values(), key=lambda p: p.id):
        prefixes = {g.prefix_bytes for g in pool.gateways.values()}
        free = [s for s in at if s not in pool_slots.values() and s in found.pools]
        best = max(free, key=lambda s: (len(prefixes & at[s].keys()), -s), default=None)
        if best is None or not prefixes & at[best].keys():
            continue
        pool_slots[pool.id] = best
        for gateway in pool.gateways.values():
            where = at[best].get(gateway.prefix_bytes)
            if where is not None:
                gateway_slots[gateway.id] = where
    return replace(found, pool_slots=pool_slots, gateway_slots=gateway_slots)


def _index(octets: bytes) -> int:
    return int(layout.IndexKey.from_buffer_copy(octets).index)
