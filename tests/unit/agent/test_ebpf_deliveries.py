"""onm.agent.datapath.ebpf.deliveries: the kernel's pool deliveries into the core's counts."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from test_ebpf_entries import tables
from test_ebpf_maps import SUBSTRATE, port

from onm.agent.core import AgentCore
from onm.agent.datapath.ebpf.deliveries import credit, grown
from onm.agent.tables import Tables

POOL_IP = bytes((10, 0, 0, 100))
POOL_ADDRESS = ipaddress.IPv6Address("fd00:0:102:300:100:7:a00:64").packed
GONE = ipaddress.IPv6Address("fd00:0:102:300:200:7:a00:65").packed
KEY = ("veth-a", POOL_IP)


def world() -> Tables:
    member = port({POOL_IP: POOL_ADDRESS})
    pooled = replace(member, ip=POOL_IP, substrate=POOL_ADDRESS)
    return replace(
        tables(),
        ports={member.interface: member},
        by_substrate={SUBSTRATE: member, POOL_ADDRESS: pooled},
    )


def test_the_kernels_sums_add_what_grew_since_the_last_reading() -> None:
    first = credit({POOL_ADDRESS: 5}, {}, world())
    assert (dict(first.added), dict(first.seen), first.stale) == ({KEY: 5}, {POOL_ADDRESS: 5}, ())
    second = credit({POOL_ADDRESS: 7}, first.seen, world())
    assert dict(second.added) == {KEY: 2}
    assert dict(credit({POOL_ADDRESS: 7}, second.seen, world()).added) == {}


def test_a_recreated_entry_counts_from_zero() -> None:
    """Deleted (stale once) and counted again by the program: below its base."""
    assert dict(credit({POOL_ADDRESS: 3}, {POOL_ADDRESS: 9}, world()).added) == {KEY: 3}


def test_addresses_that_are_no_pool_address_here_are_stale() -> None:
    found = credit({GONE: 4, SUBSTRATE: 2, POOL_ADDRESS: 1}, {}, world())
    assert dict(found.added) == {KEY: 1}
    assert sorted(found.stale) == sorted((GONE, SUBSTRATE))  # a member's own is never counted
    assert POOL_ADDRESS in found.seen and GONE not in found.seen


def test_the_core_counts_them_as_its_own_deliveries() -> None:
    core = AgentCore(1500)
    core.count_deliveries({KEY: 2})
    core.count_deliveries({KEY: 3})
    assert core.monitor.delivered == {KEY: 5}


def test_member_ports_whose_forwarded_count_moved_were_seen() -> None:
    assert grown({3: 5, 4: 2}, {3: 5, 4: 1}) == [4]
    assert grown({3: 1}, {}) == [3]
    assert grown({3: 1}, {3: 9}) == [3]  # a new entry under a reused ifindex: moved too
    assert grown({}, {3: 1}) == []
