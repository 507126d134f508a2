"""onm.agent.datapath.ebpf.entries: what the maps must hold, from the tables and the cache."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import replace

from test_ebpf_maps import IP, MAC, SUBSTRATE, port

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.entries import delta, wanted
from onm.agent.datapath.ebpf.maps import mapping_key, network_value, source_key
from onm.agent.resolution import Key, Lifetime, Mapping
from onm.agent.tables import ResidentEntry, Tables
from onm.model import NodeId
from onm.model.pool import Rotation

REMOTE_IP = bytes((10, 0, 0, 9))
REMOTE = ipaddress.IPv6Address("fd00:0:102:400:0:7:a00:9").packed
REMOTE_MAC = bytes.fromhex("020000000009")
WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LIFE = Lifetime(WHEN, WHEN)


def tables() -> Tables:
    local = port()
    return Tables(
        revision=1,
        ports={local.interface: local},
        by_node={local.node_id: local},
        by_substrate={SUBSTRATE: local},
        residents={
            (7, REMOTE_IP): ResidentEntry(REMOTE, REMOTE_MAC, frozenset({REMOTE})),
            (7, IP): ResidentEntry(SUBSTRATE, MAC, frozenset({SUBSTRATE})),
        },
        gateway_sources={(7, bytes(8)): None},  # type: ignore[dict-item]
    )


def cache(substrate: bytes = REMOTE, ranking: tuple[NodeId, ...] = ()) -> dict[Key, Mapping]:
    return {("veth-a", REMOTE_IP): Mapping(REMOTE_MAC, substrate, LIFE, WHEN, ranking)}


def test_an_unattached_port_gets_no_port_local_or_mapping_entry() -> None:
    maps = wanted(tables(), cache(), {})
    assert maps["onm_ports"] == maps["onm_locals"] == maps["onm_mappings"] == {}
    assert maps["onm_networks"] == {}  # a node's network rides in its port and local values


def test_an_attached_port_has_its_entries_and_its_resolutions() -> None:
    maps = wanted(tables(), cache(), {"veth-a": 12})
    assert list(maps["onm_ports"]) == [bytes(layout.PortKey(12))]
    local = layout.LocalValue.from_buffer_copy(maps["onm_locals"][SUBSTRATE])
    assert (local.ifindex, local.vni, bytes(local.mac)) == (12, 7, MAC)
    port = layout.PortValue.from_buffer_copy(maps["onm_ports"][bytes(layout.PortKey(12))])
    network = bytes(network_value(tables().ports["veth-a"].network))
    assert bytes(port.network) == bytes(local.network) == network  # no onm_networks lookup
    assert maps["onm_networks"] == {}
    value = layout.MappingValue.from_buffer_copy(
        maps["onm_mappings"][bytes(mapping_key(12, REMOTE_IP))]
    )
    assert (bytes(value.substrate), bytes(value.mac), value.flags) == (REMOTE, REMOTE_MAC, 0)
    assert list(maps["onm_gateways"]) == [bytes(layout.GatewayKey(7))]


def test_a_veth_port_is_flagged_for_delivery_into_its_namespace() -> None:
    def flags(veths: frozenset[str]) -> int:
        raw = wanted(tables(), cache(), {"veth-a": 12}, veths)["onm_locals"][SUBSTRATE]
        return int(layout.LocalValue.from_buffer_copy(raw).flags)

    assert flags(frozenset({"veth-a"})) == layout.PortFlag.VETH
    assert flags(frozenset()) == flags(frozenset({"tap-b"})) == 0


def test_a_members_pool_address_is_a_local_with_the_pool_ip() -> None:
    """As `Tables.by_substrate`: delivered there as the pool IP, its deliveries counted."""
    pool_ip = bytes((10, 0, 0, 100))
    pool_address = ipaddress.IPv6Address("fd00:0:102:300:100:7:a00:64").packed
    member = port({pool_ip: pool_address})
    world = replace(
        tables(),
        ports={member.interface: member},
        by_substrate={
            SUBSTRATE: member,
            pool_address: replace(member, ip=pool_ip, substrate=pool_address),
        },
    )
    assert wanted(world, cache(), {})["onm_locals"] == {}  # not attached yet
    locals_ = wanted(world, cache(), {"veth-a": 12})["onm_locals"]
    own = layout.LocalValue.from_buffer_copy(locals_[SUBSTRATE])
    pooled = layout.LocalValue.from_buffer_copy(locals_[pool_address])
    assert (bytes(own.ip), own.flags) == (IP, 0)
    assert (pooled.ifindex, bytes(pooled.ip), bytes(pooled.mac)) == (12, pool_ip, MAC)
    assert pooled.flags == layout.PortFlag.POOL_ADDRESS
    [(key, value)] = wanted(world, cache(), {"veth-a": 12})["onm_pool_sources"].items()
    allowed = layout.PoolSourceKey.from_buffer_copy(key)
    assert (allowed.ifindex, bytes(allowed.ip)) == (12, pool_ip)  # it may send from the pool IP
    assert bytes(layout.PoolSourceValue.from_buffer_copy(value).substrate) == pool_address


def test_only_remote_senders_are_allowed_sources() -> None:
    sources = wanted(tables(), cache(), {"veth-a": 12})["onm_sources"]
    assert list(sources) == [bytes(source_key(7, REMOTE_IP, REMOTE))]
    [value] = sources.values()
    assert bytes(layout.SourceValue.from_buffer_copy(value).mac) == REMOTE_MAC


def test_rotating_pools_and_local_targets_are_flagged() -> None:
    """A pool's member is reached as any node; a rotating pool's is the core's (it counts)."""
    member = wanted(tables(), cache(ranking=(NodeId("nd-2"),)), {"veth-a": 12})["onm_mappings"]
    [raw] = member.values()
    assert layout.MappingValue.from_buffer_copy(raw).flags == 0
    rotating = {
        ("veth-a", REMOTE_IP): Mapping(
            REMOTE_MAC, REMOTE, LIFE, WHEN, (NodeId("nd-2"),), rotation=Rotation(packets=5)
        )
    }
    [raw] = wanted(tables(), rotating, {"veth-a": 12})["onm_mappings"].values()
    assert layout.MappingValue.from_buffer_copy(raw).flags == layout.MappingFlag.POOL
    local = {("veth-a", IP): Mapping(MAC, SUBSTRATE, LIFE, WHEN)}
    [raw] = wanted(tables(), local, {"veth-a": 12})["onm_mappings"].values()
    assert layout.MappingValue.from_buffer_copy(raw).flags == layout.MappingFlag.LOCAL


def test_a_pool_failing_closed_has_no_mapping() -> None:
    assert wanted(tables(), cache(substrate=b""), {"veth-a": 12})["onm_mappings"] == {}


def test_delta_writes_new_and_changed_and_deletes_gone() -> None:
    change = delta({b"a": b"1", b"b": b"2", b"c": b"3"}, {b"a": b"1", b"b": b"9", b"d": b"4"})
    assert change.write == {b"b": b"9", b"d": b"4"}
    assert change.delete == (b"c",)
    assert not delta({b"a": b"1"}, {b"a": b"1"})
