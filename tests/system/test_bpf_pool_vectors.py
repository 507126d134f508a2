"""Pool traffic through the real programs (BPF_PROG_TEST_RUN) beside the agent's core.

World (`support.agent_world`): a and b on host r, g on host s, all in znet; pool web on
10.0.0.9 with members b and g, b held down, so a's requests cross to g's pool address on s.
The substrate program's maps are what `entries.wanted` writes from s's own tables; every packet
runs through s's core and the program: a redirected frame must be exactly the core's `ToNode`
(g's MAC, the pool IP as destination), a drop the core's reason, and the kernel's delivery
count for g's pool address must move exactly as the core's `delivered` for (g, pool IP) does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
from scapy.packet import Raw
from sqlalchemy import update

from onm.addressing import embed_ipv4
from onm.agent.actions import ToNode, ToSubstrate
from onm.agent.datapath.ebpf import entries
from onm.agent.datapath.ebpf.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from onm.manager import pools, tables
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from support import bpf_harness
from support.agent_world import NOW, Lab, only, resolve_via_arp
from support.agent_world import lab as world
from support.bpf_harness import IDENTIFICATION, LOOPBACK, Loaded, ethernet, write_wanted

sub_fixture = bpf_harness.sub_fixture
__all__ = ["world"]  # the agent core's world, a fixture used by name

POOL_IP = "10.0.0.9"
POOL = ipaddress.IPv4Address(POOL_IP).packed


def _pooled(world: Lab) -> None:
    """Pool web (b, g), b down: r's requesters go to g's pool address on s."""
    with world.store.write(ADMIN, NOW) as tx:
        settings = {"check": {"kind": "none"}, "all_down": "fail-closed"}
        pools.create(tx, "web", "z/znet", POOL_IP, settings, ["b", "g"])
    m = tables.pool_members
    with world.store.write(ADMIN, NOW) as tx:
        node_id = world.nodes["b"].id
        tx.connection.execute(update(m).where(m.c.node_id == node_id).values(health="down"))
        tx.record("test.health", node_id, None, {}, {world.host_ids["r"], world.host_ids["s"]})
    world.snapshot("r")
    world.snapshot("s")


def _pool_address(world: Lab) -> bytes:
    """g's address for the pool, as s's tables hold it."""
    [found] = [a for a, p in world.s.tables.by_substrate.items() if p.ip == POOL]
    return found


def _vectors(src6: bytes, dst6: bytes) -> Iterator[tuple[str, bytes]]:
    base = {"src": str(ipaddress.IPv6Address(src6)), "dst": str(ipaddress.IPv6Address(dst6))}
    for size in (0, 1, 64, 1000, 1240, 1241, 1460):
        data = Raw(bytes(i % 251 for i in range(size)))
        yield f"udp-{size}", bytes(IPv6(**base) / UDP(sport=5, dport=53) / data)
        yield f"tcp-{size}", bytes(IPv6(**base) / TCP(flags="PA") / data)
        yield f"echo-{size}", bytes(IPv6(**base) / ICMPv6EchoRequest(id=7, seq=9) / data)
        yield f"reply-{size}", bytes(IPv6(**base) / ICMPv6EchoReply(id=7, seq=9) / data)
    for hlim in (0, 1, 64):
        yield f"hlim-{hlim}", bytes(IPv6(hlim=hlim, **base) / UDP() / b"x")
    yield "tc-b8", bytes(IPv6(tc=0xB8, **base) / TCP() / b"y")
    yield "udp-zero", bytes(IPv6(**base) / UDP(chksum=0) / b"zero")
    yield "bad-icmp-checksum", bytes(IPv6(**base) / ICMPv6EchoRequest(cksum=0x1234) / b"z")
    yield "fragment", bytes(IPv6(**base) / IPv6ExtHdrFragment(m=1) / UDP() / bytes(64))
    yield "payload-length-long", bytes(IPv6(plen=300, **base) / UDP() / b"l")
    yield "tcp-truncated", bytes(IPv6(nh=6, **base) / Raw(bytes(10)))
    yield "hop-by-hop", bytes(IPv6(nh=0, **base) / Raw(bytes(8)) / UDP() / b"h")


def _run(world: Lab, sub: Loaded, pool6: bytes, packet: bytes) -> int:
    """One packet through s's core and the program; they must agree; the verdict."""
    core = world.s
    g = world.nodes["g"]
    key = (g.interface, POOL)
    kernel_before = sub.maps.pool_deliveries().get(pool6, 0)
    core_before = core.monitor.delivered.get(key, 0)
    drops = dict(core.counters.drops)
    core._state.identification = IDENTIFICATION - 1  # the kernel's generator is pinned there
    sub.maps.set_identification(IDENTIFICATION)
    actions = core.substrate_packet(packet, NOW)
    out = sub.run(ethernet(b"\x02" * 6, b"\x04" * 6, 0x86DD, packet))
    kernel = sub.maps.pool_deliveries().get(pool6, 0) - kernel_before
    counted = core.monitor.delivered.get(key, 0) - core_before
    if out.verdict == TC_ACT_REDIRECT:
        assert actions == [ToNode(g.interface, out.packet)], actions
        assert kernel == counted == 1
    elif out.verdict == TC_ACT_SHOT:
        assert not [a for a in actions if isinstance(a, ToNode)], actions
        assert out.drop is not None
        assert core.counters.drops[out.drop] == drops.get(out.drop, 0) + 1, out.drop
        assert kernel == counted  # counted by both (before the translator's drop) or neither
    else:
        assert kernel == 0  # the slow path's: the core counted what it delivered itself
    return out.verdict


def _setup(world: Lab, sub: Loaded) -> tuple[bytes, bytes]:
    _pooled(world)
    ports = {world.nodes["g"].interface: LOOPBACK}
    write_wanted(sub, entries.wanted(world.s.tables, world.s.resolver.cache, ports))
    a = world.nodes["a"]
    a6 = world.r.tables.ports[a.interface].substrate
    return a6, _pool_address(world)


def test_substrate_ingress_delivers_to_a_pool_address_as_the_core(world: Lab, sub: Loaded) -> None:
    a6, pool6 = _setup(world, sub)
    verdicts: dict[int, int] = {}
    for name, packet in _vectors(a6, pool6):
        try:
            verdict = _run(world, sub, pool6, packet)
        except AssertionError as exc:
            raise AssertionError(f"vector {name}: {exc}") from None
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 20, verdicts
    assert verdicts.get(TC_ACT_SHOT, 0) >= 1, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 4, verdicts


def test_what_r_sends_to_the_pool_is_delivered_by_the_kernel_on_s(world: Lab, sub: Loaded) -> None:
    """a's frames to the pool IP, as r's core sends them, arrive at g through the kernel."""
    a6, pool6 = _setup(world, sub)
    a = world.nodes["a"]
    pool_mac = bytes.fromhex(resolve_via_arp(world, "r", "a", POOL_IP).replace(":", ""))
    a_mac = bytes.fromhex(a.mac.replace(":", ""))
    for packet in (
        bytes(IP(src=str(a.ip), dst=POOL_IP) / ICMP(id=3, seq=1) / b"ping"),
        bytes(IP(src=str(a.ip), dst=POOL_IP, flags="DF") / TCP(dport=80, flags="S")),
        bytes(IP(src=str(a.ip), dst=POOL_IP) / UDP(dport=53) / bytes(900)),
    ):
        sent = only(
            world.r.node_frame(a.interface, ethernet(pool_mac, a_mac, 0x0800, packet), NOW),
            ToSubstrate,
        )
        [crossing] = sent
        assert crossing.packet[8:24] == a6 and crossing.packet[24:40] == pool6
        assert _run(world, sub, pool6, crossing.packet) == TC_ACT_REDIRECT
    assert world.s.monitor.delivered[(world.nodes["g"].interface, POOL)] == 3


@pytest.mark.parametrize(
    "hostile",
    ["other-host", "not-a-resident", "pool-ip-from-no-member", "other-network"],
)
def test_hostile_sources_to_a_pool_address_are_dropped_as_the_core_does(
    world: Lab, sub: Loaded, hostile: str
) -> None:
    """Spoofed substrate sources: the core's reason, and no delivery counted on either side."""
    a6, pool6 = _setup(world, sub)
    r_prefix = int.from_bytes(a6[:8], "big")
    vni = int.from_bytes(a6[9:12], "big")
    source = {
        "other-host": embed_ipv4(r_prefix + 0x10000, vni, a6[12:16]),  # a's IPv4, elsewhere
        "not-a-resident": embed_ipv4(r_prefix, vni, bytes((10, 0, 0, 77))),
        "pool-ip-from-no-member": embed_ipv4(r_prefix, vni, POOL, 9, True),
        "other-network": embed_ipv4(r_prefix, vni + 1, a6[12:16]),
    }[hostile]
    packet = bytes(
        IPv6(src=str(ipaddress.IPv6Address(source)), dst=str(ipaddress.IPv6Address(pool6)))
        / ICMPv6EchoRequest(id=1, seq=1)
        / b"spoof"
    )
    assert _run(world, sub, pool6, packet) == TC_ACT_SHOT
    want = (
        DropReason.NETWORK_MISMATCH
        if hostile == "other-network"
        else DropReason.SPOOFED_SUBSTRATE_SOURCE
    )
    assert world.s.counters.drops[want] == 1
    assert world.s.monitor.delivered.get((world.nodes["g"].interface, POOL), 0) == 0
