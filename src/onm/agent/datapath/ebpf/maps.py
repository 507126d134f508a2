"""The programs' maps, typed: entries built from the agent's tables, written and read back.

Python decides, BPF looks up: `port_value`, `network_value` and `local_value` turn what
`onm.agent.tables` compiled into the map layouts of `layout` (pure), and `DatapathMaps` writes
them into a loaded object's maps, each checked at open against the sizes the object declares
(a program built from another layout is refused by name, never half-used).

Both objects share one set of these maps, pinned so a restarted agent adopts them
(`onm.agent.datapath.ebpf.pins`). The plan for the slices after this one (issue #11), which
these layouts leave room for: edge pools get a Maglev
array map and an LRU flow-pinning map beside `onm_mappings`; encap networks get a flag value and
their own rewrite; counters are per CPU and summed when read (`drops`, `slow_paths`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Mapping

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.libbpf import BpfError, BpfMap, BpfObject, possible_cpus
from onm.agent.gateway import TenantCounts
from onm.agent.tables import Duty, NetworkEntry, Port, Tables
from onm.errors import InvalidInputError
from onm.model import Encoding
from onm.model.edge_pool import HashField
from onm.packet.drop import DropReason
from onm.packet.siit import SiitConfig

_Octets = ctypes.c_uint8
_TENANT_FIELDS = tuple(name for name, _kind in layout.TenantCountsValue._fields_)
"""`TenantCounts`' fields by name (tests/unit/agent/test_ebpf_maps.py checks they agree)."""


def _octets(data: bytes, size: int, field: str) -> ctypes.Array[ctypes.c_uint8]:
    if len(data) != size:
        raise InvalidInputError(field, f"must be {size} packed octets, got {len(data)}")
    return (_Octets * size).from_buffer_copy(data)


def port_value(port: Port, vni: int, public_ip: bool = False) -> layout.PortValue:
    """`public_ip`: the node holds a public IP on an edge pool (`holds_public_ip`)."""
    flags = layout.PortFlag.POOL_MEMBER if port.pool_sources else layout.PortFlag(0)
    if public_ip:
        flags |= layout.PortFlag.PUBLIC_IP
    return layout.PortValue(
        vni=vni,
        ip=_octets(port.ip, 4, "port.ip"),
        substrate=_octets(port.substrate, 16, "port.substrate"),
        mac=_octets(port.mac, 6, "port.mac"),
        flags=int(flags),
        network=network_value(port.network),
    )


def holds_public_ip(tables: Tables, port: Port) -> bool:
    """The node has a public IP on some edge pool: its edge traffic is the core's, which sends
    it by the holder (`onm.agent.egress.held_by`)."""
    return any(node == port.node_id for node, _pool in tables.public_owners)


def network_value(network: NetworkEntry) -> layout.NetworkValue:
    return network_settings(network.siit, network.router_mac, network.encoding is Encoding.ENCAP)


def network_settings(siit: SiitConfig, router_mac: bytes, encap: bool) -> layout.NetworkValue:
    """A network's translator settings as the programs test them (`layout.NetworkFlag`)."""
    flags = layout.NetworkFlag(0)
    if siit.decrement_ttl:
        flags |= layout.NetworkFlag.DECREMENT_TTL
    if siit.copy_tos:
        flags |= layout.NetworkFlag.COPY_TOS
    if encap:
        flags |= layout.NetworkFlag.ENCAP
    return layout.NetworkValue(
        lowest_ipv6_mtu=siit.lowest_ipv6_mtu,
        ipv6_mtu=siit.ipv6_mtu,
        ipv4_mtu=siit.ipv4_mtu,
        router_mac=_octets(router_mac, 6, "network.router_mac"),
        flags=int(flags),
    )


def local_value(port: Port, ifindex: int, veth: bool = False) -> layout.LocalValue:
    """`port` as `Tables.by_substrate` holds it: a member's pool address is its port with the
    pool IP (`PortFlag.POOL_ADDRESS`: its deliveries are counted). `veth`: the port is a veth
    (delivered with `bpf_redirect_peer`)."""
    pooled = port.ip in port.pool_sources
    flags = layout.PortFlag.POOL_ADDRESS if pooled else layout.PortFlag(0)
    if veth:
        flags |= layout.PortFlag.VETH
    return layout.LocalValue(
        ifindex=ifindex,
        vni=port.network.vni,
        ip=_octets(port.ip, 4, "port.ip"),
        mac=_octets(port.mac, 6, "port.mac"),
        flags=int(flags),
        network=network_value(port.network),
    )


def mapping_key(ifindex: int, target: bytes) -> layout.MappingKey:
    return layout.MappingKey(ifindex=ifindex, target=_octets(target, 4, "mapping.target"))


def mapping_value(substrate: bytes, mac: bytes, flags: layout.MappingFlag) -> layout.MappingValue:
    return layout.MappingValue(
        substrate=_octets(substrate, 16, "mapping.substrate"),
        mac=_octets(mac, 6, "mapping.mac"),
        flags=int(flags),
    )


def pool_source(
    ifindex: int, pool_ip: bytes, address: bytes
) -> tuple[layout.PoolSourceKey, layout.PoolSourceValue]:
    """A member's port may send from `pool_ip`, leaving from its pool `address`."""
    return (
        layout.PoolSourceKey(ifindex=ifindex, ip=_octets(pool_ip, 4, "pool.ip")),
        layout.PoolSourceValue(substrate=_octets(address, 16, "pool.address")),
    )


def source_key(vni: int, ip: bytes, source: bytes) -> layout.SourceKey:
    return layout.SourceKey(
        vni=vni, ip=_octets(ip, 4, "resident.ip"), source=_octets(source, 16, "resident.source")
    )


def gateway_key(vni: int, prefix: bytes) -> layout.GatewayKey:
    return layout.GatewayKey(vni=vni, prefix=_octets(prefix, 8, "gateway.prefix"))


HASH_FLAGS: dict[HashField, layout.HashFlag] = {
    HashField.SRC: layout.HashFlag.SRC,
    HashField.DST: layout.HashFlag.DST,
    HashField.PROTO: layout.HashFlag.PROTO,
    HashField.SPORT: layout.HashFlag.SPORT,
    HashField.DPORT: layout.HashFlag.DPORT,
}


def hash_flags(fields: Iterable[HashField]) -> int:
    """An edge pool's hash fields as the programs test them (`layout.HashFlag` bits)."""
    flags = layout.HashFlag(0)
    for name in fields:
        flags |= HASH_FLAGS[name]
    return int(flags)


def duty_value(duty: Duty, ifindex: int) -> layout.DutyValue:
    """A served network as the gateway programs test it: its TUN, the gateway's own /64, the
    network's CIDRs (more than `DUTY_CIDRS`: `DutyFlag.SLOW`); an anycast pool's hash fields
    (`DutyFlag.ANYCAST`: its replies are steered)."""
    cidrs = duty.network.cidrs
    flags = layout.DutyFlag(0)
    if len(cidrs) > layout.DUTY_CIDRS:
        flags |= layout.DutyFlag.SLOW
    fields = 0
    if duty.pool.anycast is not None:
        flags |= layout.DutyFlag.ANYCAST
        fields = hash_flags(duty.pool.fields)
    value = layout.DutyValue(
        ifindex=ifindex,
        vni=duty.network.vni,
        prefix=_octets(duty.gateway.prefix_bytes, 8, "gateway.prefix"),
        flags=int(flags),
        cidrs=min(len(cidrs), layout.DUTY_CIDRS),
        fields=fields,
    )
    for i, cidr in enumerate(cidrs[: layout.DUTY_CIDRS]):  # network order in memory
        value.cidr_ips[i] = int.from_bytes(cidr.network_address.packed, "little")
        value.cidr_masks[i] = int.from_bytes(cidr.netmask.packed, "little")
    return value


def resident_key(vni: int, ip: bytes) -> layout.ResidentKey:
    return layout.ResidentKey(vni=vni, ip=_octets(ip, 4, "resident.ip"))


class DatapathMaps:
    """The maps of one loaded object, by name, checked against `layout.MAPS`."""

    def __init__(self, obj: BpfObject) -> None:
        self.maps: dict[str, BpfMap] = {}
        for spec in layout.MAPS:
            found = obj.map(spec.name)
            for what, have, want in (
                ("key", found.key_size, ctypes.sizeof(spec.key)),
                ("value", found.value_size, ctypes.sizeof(spec.value)),
                ("max_entries", found.max_entries, spec.max_entries),
            ):
                if have != want:
                    raise BpfError(
                        f"map {spec.name} of {obj.path}",
                        "check layout",
                        22,
                        f"its {what} is {have}, layout.{spec.name} says {want}: rebuild (make bpf)",
                    )
            self.maps[spec.name] = found

    def __getitem__(self, name: str) -> BpfMap:
        return self.maps[name]

    def set_config(self, substrate_ifindex: int) -> None:
        self.maps["onm_settings"].update(
            layout.IndexKey(0), layout.ConfigValue(substrate_ifindex=substrate_ifindex)
        )

    def _per_cpu_raw(self, name: str, index: int) -> list[bytes]:
        """Each CPU's value octets of a per-CPU array's entry `index`."""
        bpf_map = self.maps[name]
        slot = (bpf_map.value_size + 7) // 8 * 8
        cpus = possible_cpus()
        width = bpf_map.value_size
        raw = bpf_map.lookup_raw(layout.IndexKey(index), slot * cpus)
        if raw is None:
            return [bytes(width)] * cpus
        return [raw[i * slot : i * slot + width] for i in range(cpus)]

    def _per_cpu(self, name: str, index: int) -> list[int]:
        return [int.from_bytes(v, "little") for v in self._per_cpu_raw(name, index)]

    def edge_sent(self, slot: int, name: str = "onm_edge_sent") -> list[tuple[int, int, int]]:
        """Each CPU's (packets, bytes, flows) node_ingress sent gateway `slot` (of
        `onm_anycast_sent`: anycast pool `slot`'s shared /64)."""
        found = []
        for raw in self._per_cpu_raw(name, slot):
            value = layout.EdgeSentValue.from_buffer_copy(raw)
            found.append((value.packets, value.bytes, value.flows))
        return found

    def zero_edge_sent(self, slot: int) -> None:
        """Gateway `slot`'s counts back to nothing on every CPU (a new gateway has it)."""
        bpf_map = self.maps["onm_edge_sent"]
        size = (bpf_map.value_size + 7) // 8 * 8 * possible_cpus()
        bpf_map.update(layout.IndexKey(slot), ctypes.create_string_buffer(size))

    def _per_cpu_set(self, name: str, index: int, values: list[int]) -> None:
        bpf_map = self.maps[name]
        slot = (bpf_map.value_size + 7) // 8 * 8
        raw = b"".join(
            value.to_bytes(bpf_map.value_size, "little").ljust(slot, b"\0") for value in values
        )
        bpf_map.update(layout.IndexKey(index), ctypes.create_string_buffer(raw, len(raw)))

    def _per_cpu_entries(self, name: str) -> dict[bytes, list[bytes]]:
        """A per-CPU hash's entries: key octets -> each CPU's value octets (a walk and a
        lookup per key: a few per host)."""
        bpf_map = self.maps[name]
        key_type = layout.MAP_BY_NAME[name].key
        width = bpf_map.value_size
        slot = (width + 7) // 8 * 8
        cpus = possible_cpus()
        found = {}
        keys = bpf_map.keys()  # a map's walk, not a dict's
        for octets in keys:
            raw = bpf_map.lookup_raw(key_type.from_buffer_copy(octets), slot * cpus)
            if raw is not None:
                found[octets] = [raw[i * slot : i * slot + width] for i in range(cpus)]
        return found

    def _sums(self, name: str) -> dict[bytes, int]:
        """A per-CPU hash of counts (`CounterValue`), each key's summed over CPUs."""
        return {
            key: sum(int.from_bytes(v, "little") for v in values)
            for key, values in self._per_cpu_entries(name).items()
        }

    def pool_deliveries(self) -> dict[bytes, int]:
        """Packets delivered to each pool address (`onm_pool_deliveries`), by address."""
        return self._sums("onm_pool_deliveries")

    def member_sent(self) -> dict[int, int]:
        """Frames node_ingress forwarded from each member's port (`onm_member_sent`), by
        ifindex."""
        return {
            layout.PortKey.from_buffer_copy(key).ifindex: n
            for key, n in self._sums("onm_member_sent").items()
        }

    def tenant_counts(self) -> dict[int, TenantCounts]:
        """What the gateway programs carried for each served network (`onm_tenant_counts`),
        summed over CPUs."""
        found = {}
        for key, values in self._per_cpu_entries("onm_tenant_counts").items():
            cpus = [layout.TenantCountsValue.from_buffer_copy(v) for v in values]
            found[layout.NetworkKey.from_buffer_copy(key).vni] = TenantCounts(
                **{name: sum(getattr(c, name) for c in cpus) for name in _TENANT_FIELDS}
            )
        return found

    def forget_deliveries(self, address: bytes) -> None:
        """An address that is no longer a pool address: its count goes."""
        self.maps["onm_pool_deliveries"].delete(layout.LocalKey.from_buffer_copy(address))

    def forget_member(self, ifindex: int) -> None:
        """A port that is no longer a member's: its count goes."""
        self.maps["onm_member_sent"].delete(layout.PortKey(ifindex))

    def drops(self) -> Mapping[DropReason, int]:
        """Drops per reason, summed over CPUs (reasons never counted left out)."""
        counts = {reason: sum(self._per_cpu("onm_drops", reason)) for reason in DropReason}
        return {reason: n for reason, n in counts.items() if n}

    def slow_paths(self) -> Mapping[layout.SlowPath, int]:
        """Hand-overs to the userspace core per reason, summed over CPUs."""
        counts = {why: sum(self._per_cpu("onm_slowpath", why)) for why in layout.SlowPath}
        return {why: n for why, n in counts.items() if n}

    def set_identification(self, value: int) -> None:
        """Every CPU's next IPv4 Identification the same (tests pin it so)."""
        self._per_cpu_set("onm_ident", 0, [value] * possible_cpus())

    def spread_identification(self, start: int) -> None:
        """Each CPU's generator an equal share of the 16-bit space apart, so CPUs do not hand
        out the same Identification at once (RFC 6864 4.1: unique per source, destination and
        protocol while a datagram may be reassembled); what the agent seeds at start."""
        cpus = possible_cpus()
        self._per_cpu_set(
            "onm_ident", 0, [(start + cpu * (0x10000 // cpus)) & 0xFFFF for cpu in range(cpus)]
        )

    def identifications(self) -> list[int]:
        return self._per_cpu("onm_ident", 0)
