"""onm.agent.datapath.ebpf.entries on an edge host: a served network's entries for the gateway
programs (`onm_duties`, `onm_tuns`), and where every resident lives (`onm_residents`)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.entries import wanted
from onm.agent.datapath.ebpf.maps import duty_value, gateway_key, resident_key
from support.agent_world import Lab
from support.agent_world import lab as world
from support.edge_world import edge_world

__all__ = ["world"]

TUN = 9


def _duty(maps: dict[str, dict[bytes, bytes]], vni: int, prefix: bytes) -> layout.DutyValue:
    return layout.DutyValue.from_buffer_copy(maps["onm_duties"][bytes(gateway_key(vni, prefix))])


def test_a_served_network_is_written_once_its_tun_has_the_program(world: Lab) -> None:
    edge = edge_world(world, {})
    gw = edge.gw["gw1"]
    vni = edge.vni
    assert wanted(gw.tables, gw.resolver.cache, {})["onm_duties"] == {}  # no TUN yet
    maps = wanted(gw.tables, gw.resolver.cache, {}, frozenset(), {vni: TUN})
    prefix = edge.prefixes["gw1"].to_bytes(8, "big")
    duty = _duty(maps, vni, prefix)
    assert (duty.ifindex, duty.vni, bytes(duty.prefix), duty.flags) == (TUN, vni, prefix, 0)
    assert duty.cidrs == 1  # znet 10.0.0.0/24, in network order in memory
    assert int(duty.cidr_ips[0]).to_bytes(4, "little") == bytes([10, 0, 0, 0])
    assert int(duty.cidr_masks[0]).to_bytes(4, "little") == bytes([255, 255, 255, 0])
    assert maps["onm_tuns"] == {bytes(layout.PortKey(TUN)): bytes(duty)}
    assert bytes(layout.NetworkKey(vni)) in maps["onm_networks"]  # no node here, still written


def test_every_resident_is_written_where_it_lives(world: Lab) -> None:
    edge = edge_world(world, {})
    gw = edge.gw["gw1"]
    maps = wanted(gw.tables, gw.resolver.cache, {}, frozenset(), {edge.vni: TUN})
    for (vni, ip), resident in gw.tables.residents.items():
        value = layout.ResidentValue.from_buffer_copy(
            maps["onm_residents"][bytes(resident_key(vni, ip))]
        )
        assert bytes(value.substrate) == (resident.substrate or bytes(16))
    a = world.nodes["a"]
    assert bytes(resident_key(edge.vni, a.ip.packed)) in maps["onm_residents"]


def test_an_anycast_gateway_is_written_by_both_its_prefixes_with_its_hash_fields(
    world: Lab,
) -> None:
    edge = edge_world(world, {"mode": "anycast", "hash": "src,dst,dport"})
    gw = edge.gw["gw1"]
    maps = wanted(gw.tables, gw.resolver.cache, {}, frozenset(), {edge.vni: TUN})
    [duty] = gw.tables.duties.values()
    assert len(duty.prefixes) == 2  # the host's /64 and the pool's shared one
    for prefix in duty.prefixes:
        value = _duty(maps, edge.vni, prefix)
        assert value.flags == layout.DutyFlag.ANYCAST  # steered replies, in the kernel
        assert value.fields == layout.HashFlag.SRC | layout.HashFlag.DST | layout.HashFlag.DPORT


def test_a_residents_own_address_is_the_one_source_whose_variants_count(world: Lab) -> None:
    """`SourceFlag.STEERED` marks what `ResidentEntry.steered` names: a node's own address,
    never a pool member's pool address (whose variants the core's `_sent_by` refuses)."""
    edge = edge_world(world, {"mode": "anycast"})
    gw = edge.gw["gw1"]
    maps = wanted(gw.tables, gw.resolver.cache, {}, frozenset(), {edge.vni: TUN})
    marked = {
        bytes(layout.SourceKey.from_buffer_copy(k).source)
        for k, v in maps["onm_sources"].items()
        if layout.SourceValue.from_buffer_copy(v).flags & layout.SourceFlag.STEERED
    }
    steered = {r.steered for r in gw.tables.residents.values() if r.steered}
    assert marked and marked == steered - gw.tables.by_substrate.keys()


def test_a_network_of_more_cidrs_than_a_duty_holds_is_the_slow_paths(world: Lab) -> None:
    edge = edge_world(world, {})
    [duty] = edge.gw["gw1"].tables.duties.values()
    many = tuple(ipaddress.IPv4Network(f"10.{i}.0.0/16") for i in range(layout.DUTY_CIDRS + 1))
    wide = replace(duty, network=replace(duty.network, cidrs=many))
    value = duty_value(wide, TUN)
    assert value.flags == layout.DutyFlag.SLOW and value.cidrs == layout.DUTY_CIDRS
    assert duty_value(duty, TUN).flags == 0
