"""onm.agent.datapath.ebpf.maps: the agent's tables as the programs' map entries (pure part)."""

from __future__ import annotations

import ctypes
import ipaddress
from dataclasses import fields, replace

import pytest

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.maps import (
    local_value,
    mapping_key,
    mapping_value,
    network_value,
    port_value,
    source_key,
)
from onm.agent.gateway import TenantCounts
from onm.agent.tables import NetworkEntry, Port, router_mac
from onm.errors import InvalidInputError
from onm.model import Encoding, NetworkId, NodeId
from onm.packet.siit import SiitConfig

IP = bytes((10, 0, 0, 1))
SUBSTRATE = ipaddress.IPv6Address("fd00:0:102:300:0:7:a00:1").packed
MAC = bytes.fromhex("020000000001")


def network(encoding: Encoding = Encoding.SIIT, **siit: object) -> NetworkEntry:
    return NetworkEntry(
        id=NetworkId("n-1"),
        vni=7,
        encoding=encoding,
        cidrs=(ipaddress.IPv4Network("10.0.0.0/24"),),
        gateways=frozenset(),
        router_mac=router_mac(7),
        siit=SiitConfig(**siit),  # type: ignore[arg-type]
    )


def port(pool_sources: dict[bytes, bytes] | None = None, ip: bytes = IP) -> Port:
    return Port(
        node_id=NodeId("nd-1"),
        name="a",
        interface="veth-a",
        mac=MAC,
        ip=ip,
        substrate=SUBSTRATE,
        network=network(),
        pool_sources=pool_sources or {},
    )


def test_network_flags_follow_the_translator_settings() -> None:
    agent = network_value(network(decrement_ttl=False, ipv6_mtu=1500, ipv4_mtu=1480))
    assert agent.flags == layout.NetworkFlag.COPY_TOS
    assert (agent.ipv6_mtu, agent.ipv4_mtu, agent.lowest_ipv6_mtu) == (1500, 1480, 1280)
    assert bytes(agent.router_mac) == router_mac(7)
    rfc = network_value(network(copy_tos=False))
    assert rfc.flags == layout.NetworkFlag.DECREMENT_TTL
    encap = network_value(network(Encoding.ENCAP))
    assert encap.flags & layout.NetworkFlag.ENCAP


def test_port_and_local_entries() -> None:
    value = port_value(port(), 7)
    assert (value.vni, bytes(value.ip), bytes(value.substrate), bytes(value.mac)) == (
        7,
        IP,
        SUBSTRATE,
        MAC,
    )
    assert value.flags == 0
    pooled = port({bytes((10, 0, 0, 100)): SUBSTRATE})
    assert port_value(pooled, 7).flags == layout.PortFlag.POOL_MEMBER
    local = local_value(pooled, 42)  # the member's own address: delivered as any node's
    assert (local.ifindex, local.vni, bytes(local.ip)) == (42, 7, IP)
    assert local.flags == 0
    as_pool = local_value(replace(pooled, ip=bytes((10, 0, 0, 100))), 42)  # its pool address
    assert bytes(as_pool.ip) == bytes((10, 0, 0, 100))
    assert as_pool.flags == layout.PortFlag.POOL_ADDRESS


def test_keys_pack_in_network_order() -> None:
    key = mapping_key(3, bytes((10, 0, 0, 2)))
    assert bytes(key) == (3).to_bytes(4, "little") + bytes((10, 0, 0, 2))
    value = mapping_value(SUBSTRATE, MAC, layout.MappingFlag.LOCAL)
    assert bytes(value)[:16] == SUBSTRATE and value.flags == layout.MappingFlag.LOCAL
    source = source_key(7, IP, SUBSTRATE)
    assert ctypes.sizeof(source) == 24 and bytes(source)[8:] == SUBSTRATE


def test_bad_lengths_name_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"port\.ip: must be 4 packed octets, got 16"):
        port_value(port(ip=SUBSTRATE), 7)
    with pytest.raises(InvalidInputError, match=r"mapping\.substrate"):
        mapping_value(IP, MAC, layout.MappingFlag(0))


def test_the_kernels_tenant_counts_have_the_cores_fields() -> None:
    """`DatapathMaps.tenant_counts` builds `TenantCounts` from the C struct's fields by name."""
    c_fields = [name for name, _ in layout.TenantCountsValue._fields_]
    assert c_fields == [f.name for f in fields(TenantCounts)]
