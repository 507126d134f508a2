"""What the programs' maps must hold now, computed from the core's tables and resolution cache.

Pure: `wanted` turns the tables, the resolver's cache and the ifindexes of the ports attached
so far into every map's entries as raw octets (key -> value, the layouts of `layout`), and
`delta` says what to write and what to delete to go from what the maps hold to that. The
adapter (`onm.agent.datapath.ebpf.datapath`) does the writing.

A port is written only once its interface is attached (its ifindex known): until then the
node program, which drops every frame of a port `onm_ports` does not know, forwards nothing for
it. A mapping is written only for an attached requester and a known substrate address (a pool
that fails closed has none: its frames take the slow path as misses, which the core refuses).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.maps import (
    duty_value,
    gateway_key,
    holds_public_ip,
    local_value,
    mapping_key,
    mapping_value,
    network_value,
    pool_source,
    port_value,
    resident_key,
    source_key,
)
from onm.agent.resolution import Key
from onm.agent.resolution import Mapping as Resolution
from onm.agent.tables import Tables

Entries = dict[bytes, bytes]
"""One map's entries: key octets -> value octets."""
WRITTEN_MAPS = (
    "onm_ports",
    "onm_networks",
    "onm_locals",
    "onm_sources",
    "onm_gateways",
    "onm_residents",
    "onm_tuns",
    "onm_duties",
    "onm_pool_sources",
    "onm_mappings",
)
"""The maps the agent fills from its tables, in the order they are written: what a frame
needs last (its mapping, a gateway's duty) after what checks it (port, network, residents)."""


def wanted(
    tables: Tables,
    cache: Mapping[Key, Resolution],
    ifindexes: Mapping[str, int],
    veths: Set[str] = frozenset(),
    tuns: Mapping[int, int] | None = None,
) -> dict[str, Entries]:
    """Every written map's entries for `tables`, the resolver's `cache` and the attached ports
    (`ifindexes`: interface -> ifindex; `veths`: those that are veths); on an edge host, the
    served networks whose TUN has the gateway program (`tuns`: network id -> ifindex)."""
    maps: dict[str, Entries] = {name: {} for name in WRITTEN_MAPS}
    _duties(maps, tables, tuns or {})
    for interface, port in tables.ports.items():
        vni = port.network.vni
        ifindex = ifindexes.get(interface)
        if ifindex is None:
            continue
        public = holds_public_ip(tables, port)
        maps["onm_ports"][bytes(layout.PortKey(ifindex))] = bytes(port_value(port, vni, public))
        for pool_ip, address in port.pool_sources.items():
            allowed, pooled = pool_source(ifindex, pool_ip, address)
            maps["onm_pool_sources"][bytes(allowed)] = bytes(pooled)
    for address, local in tables.by_substrate.items():  # nodes' own and pool addresses
        ifindex = ifindexes.get(local.interface)
        if ifindex is not None:
            maps["onm_locals"][address] = bytes(
                local_value(local, ifindex, local.interface in veths)
            )
    sources = maps["onm_sources"]
    for (vni, ip), resident in tables.residents.items():
        mac = (layout.u8 * 6).from_buffer_copy(resident.mac)
        for source in resident.sources:
            if source not in tables.by_substrate:  # a local node's address never arrives
                flags = layout.SourceFlag.STEERED if source == resident.steered else 0
                value = layout.SourceValue(mac=mac, flags=int(flags))
                sources[bytes(source_key(vni, ip, source))] = bytes(value)
    for vni, prefix in tables.gateway_sources:
        maps["onm_gateways"][bytes(gateway_key(vni, prefix))] = bytes(layout.GatewayValue(1))
    mappings = maps["onm_mappings"]
    for (interface, target), resolution in cache.items():
        ifindex = ifindexes.get(interface)
        requester = tables.ports.get(interface)
        if ifindex is None or requester is None or len(resolution.substrate) != 16:
            continue
        flags = layout.MappingFlag(0)
        if tables.port_at(resolution.substrate) is not None:
            flags |= layout.MappingFlag.LOCAL
        if resolution.rotation is not None:  # counted per packet by the core
            flags |= layout.MappingFlag.POOL
        key = mapping_key(ifindex, target)
        mappings[bytes(key)] = bytes(mapping_value(resolution.substrate, resolution.mac, flags))
    return maps


def _duties(maps: dict[str, Entries], tables: Tables, tuns: Mapping[int, int]) -> None:
    """A served network's entries (`onm.agent.gateway`'s both ways): by each /64 senders
    address the gateway by and by its TUN; and where every resident lives (a gateway's replies
    go there; a node's host takes from a gateway only what no resident sends from)."""
    for vni, duty in tables.duties.items():
        ifindex = tuns.get(vni)
        if ifindex is None:
            continue
        value = bytes(duty_value(duty, ifindex))
        maps["onm_networks"][bytes(layout.NetworkKey(vni))] = bytes(network_value(duty.network))
        maps["onm_tuns"][bytes(layout.PortKey(ifindex))] = value
        for prefix in duty.prefixes:
            maps["onm_duties"][bytes(gateway_key(vni, prefix))] = value
    residents = maps["onm_residents"]
    for (vni, ip), resident in tables.residents.items():
        address = resident.substrate if len(resident.substrate) == 16 else bytes(16)
        substrate = (layout.u8 * 16).from_buffer_copy(address)  # zero: a pool with no member
        residents[bytes(resident_key(vni, ip))] = bytes(layout.ResidentValue(substrate))


@dataclass(frozen=True, slots=True)
class Delta:
    """What to change in one map: entries to write (new or changed) and keys to delete."""

    write: Entries
    delete: tuple[bytes, ...]

    def __bool__(self) -> bool:
        return bool(self.write or self.delete)


def delta(held: Entries, want: Entries) -> Delta:
    """From what a map holds (as last written) to what it must hold."""
    write = {key: value for key, value in want.items() if held.get(key) != value}
    return Delta(write, tuple(key for key in held if key not in want))
