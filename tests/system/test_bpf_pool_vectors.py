"""Pool traffic through the real programs (BPF_PROG_TEST_RUN) beside the agent's core.

World (`support.agent_world`): a and b on host r, g on host s, all in znet; pool web on
10.0.0.9 with members b and g (b held down where a's requests must cross to g's pool address
on s). The programs' maps are what `entries.wanted` writes from that host's own tables and
resolutions; every frame runs through the core and the program: a redirected frame must be
exactly the core's `ToNode` / `ToSubstrate`, a drop the core's reason, a hand-over the core's
to decide; the kernel's delivery count of a pool address must move exactly as the core's
`delivered` for (member, pool IP) does, and what a member's port forwarded is counted for its
passive liveness (`onm_member_sent`).

- receive: a's requests arriving at g's pool address (substrate_ingress), hostile sources;
- a member answering from the pool IP (node_ingress on s: from g's pool address), and a node
  that is no member sending from it (the core's: dropped, its claim noted);
- a requester's frames to the pool IP: to g's pool address on s, or to b's next door.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
from scapy.packet import Raw
from sqlalchemy import update
from test_bpf_vectors import ipv4_vectors

from onm.addressing import embed_ipv4
from onm.agent.actions import ToNode, ToSubstrate
from onm.agent.datapath.ebpf import entries, layout
from onm.agent.datapath.ebpf.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from onm.manager import pools, tables
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from support import bpf_harness
from support.agent_world import NOW, Lab, only, resolve_via_arp
from support.agent_world import lab as world
from support.bpf_harness import IDENTIFICATION, LOOPBACK, Loaded, ethernet, write_wanted

node_fixture = bpf_harness.node_fixture  # the shared fixtures `node` and `sub`
sub_fixture = bpf_harness.sub_fixture
__all__ = ["world"]  # the agent core's world, a fixture used by name

POOL_IP = "10.0.0.9"
POOL = ipaddress.IPv4Address(POOL_IP).packed


def _pooled(world: Lab, b_down: bool = True) -> None:
    """Pool web (b, g), b down: r's requesters go to g's pool address on s (else to b)."""
    with world.store.write(ADMIN, NOW) as tx:
        settings = {"check": {"kind": "none"}, "all_down": "fail-closed"}
        pools.create(tx, "web", "z/znet", POOL_IP, settings, ["b", "g"])
    if not b_down:
        world.snapshot("r")
        world.snapshot("s")
        return
    m = tables.pool_members
    with world.store.write(ADMIN, NOW) as tx:
        node_id = world.nodes["b"].id
        tx.connection.execute(update(m).where(m.c.node_id == node_id).values(health="down"))
        tx.record("test.health", node_id, None, {}, {world.host_ids["r"], world.host_ids["s"]})
    world.snapshot("r")
    world.snapshot("s")


def _pool_address(world: Lab, host: str = "s") -> bytes:
    """The local member's address for the pool, as `host`'s tables hold it."""
    [found] = [a for a, p in world.core(host).tables.by_substrate.items() if p.ip == POOL]
    return found


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


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


def _tally(vectors: Iterable[tuple[str, bytes]], run: Callable[[bytes], int]) -> dict[int, int]:
    """Each vector run and checked by `run` (its failure names the vector): verdict -> count."""
    verdicts: dict[int, int] = {}
    for name, packet in vectors:
        try:
            verdict = run(packet)
        except AssertionError as exc:
            raise AssertionError(f"vector {name}: {exc}") from None
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    return verdicts


def test_substrate_ingress_delivers_to_a_pool_address_as_the_core(world: Lab, sub: Loaded) -> None:
    a6, pool6 = _setup(world, sub)
    verdicts = _tally(_vectors(a6, pool6), lambda packet: _run(world, sub, pool6, packet))
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


# --- node_ingress ----------------------------------------------------------------------------
B_IFINDEX = 9


def _sends(world: Lab, node: Loaded, host: str, sender: str, frame: bytes) -> int:
    """One frame from `sender`'s port through `host`'s core and node_ingress; they must agree;
    the kernel's delivery and member counts must move as the core's; the verdict."""
    core = world.core(host)
    interface = world.nodes[sender].interface
    member = interface in core.monitor.by_interface
    before = node.maps.pool_deliveries()
    sent_before = node.maps.member_sent().get(LOOPBACK, 0)
    counted_before = dict(core.monitor.delivered)
    drops = dict(core.counters.drops)
    actions = core.node_frame(interface, frame, NOW)
    out = node.run(frame)
    moved = {
        address: n - before.get(address, 0)
        for address, n in node.maps.pool_deliveries().items()
        if n != before.get(address, 0)
    }
    counted = {
        key: n - counted_before.get(key, 0)
        for key, n in core.monitor.delivered.items()
        if n != counted_before.get(key, 0)
    }
    sent = node.maps.member_sent().get(LOOPBACK, 0) - sent_before
    kernel = {
        (core.tables.by_substrate[a].interface, core.tables.by_substrate[a].ip): n
        for a, n in moved.items()
    }
    if out.verdict == TC_ACT_REDIRECT:
        crossed = [a for a in actions if isinstance(a, ToSubstrate | ToNode)]
        if out.packet[12:14] == b"\x86\xdd":
            assert crossed == [ToSubstrate(out.packet[14:])], (crossed, out.packet.hex())
        else:
            [to_node] = crossed
            assert to_node == ToNode(to_node.interface, out.packet), crossed
        assert kernel == counted, (kernel, counted)
        assert sent == (1 if member else 0)
    elif out.verdict == TC_ACT_SHOT:
        assert not [a for a in actions if isinstance(a, ToSubstrate | ToNode)], actions
        assert out.drop is not None
        assert core.counters.drops[out.drop] == drops.get(out.drop, 0) + 1, out.drop
        assert kernel == counted, (kernel, counted)
    else:
        assert kernel == {} and sent == 0  # the core's: it counts what it delivers itself
    return out.verdict


def _agree(world: Lab, node: Loaded, host: str, sender: str, dst_mac: bytes, src: str, dst: str):
    a_mac = _mac(world.nodes[sender].mac)
    verdicts = _tally(
        ipv4_vectors(src, dst),
        lambda packet: _sends(world, node, host, sender, ethernet(dst_mac, a_mac, 0x0800, packet)),
    )
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 30, verdicts
    assert verdicts.get(TC_ACT_SHOT, 0) >= 2, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 10, verdicts
    return verdicts


def test_a_member_answers_from_the_pool_ip_in_the_kernel(world: Lab, node: Loaded) -> None:
    """g on s answers a from the pool IP: it leaves from g's pool address, as the core sends."""
    _pooled(world)
    g, a = world.nodes["g"], world.nodes["a"]
    a_mac = _mac(resolve_via_arp(world, "s", "g", str(a.ip)))
    ports = {g.interface: LOOPBACK}
    write_wanted(node, entries.wanted(world.s.tables, world.s.resolver.cache, ports))
    _agree(world, node, "s", "g", a_mac, POOL_IP, str(a.ip))
    reply = bytes(IP(src=POOL_IP, dst=str(a.ip)) / ICMP(type=0, id=7, seq=9) / b"pong")
    sent = only(
        world.s.node_frame(g.interface, ethernet(a_mac, _mac(g.mac), 0x0800, reply), NOW),
        ToSubstrate,
    )
    assert sent[0].packet[8:24] == _pool_address(world)  # from g's pool address
    # From an IP that is neither its own nor a pool's it is a member of: the core's, dropped.
    spoof = bytes(IP(src="10.0.0.77", dst=str(a.ip)) / UDP() / b"s")
    frame = ethernet(a_mac, _mac(g.mac), 0x0800, spoof)
    assert node.run(frame).slow is layout.SlowPath.FOREIGN_SOURCE
    assert _sends(world, node, "s", "g", frame) == TC_ACT_OK
    assert world.s.counters.drops[DropReason.SPOOFED_SOURCE_IP] >= 1


def test_nobody_else_sends_from_the_pool_ip(world: Lab, node: Loaded) -> None:
    """a is no member: from the pool IP it is handed to the core, which drops it as spoofed."""
    _pooled(world)
    a = world.nodes["a"]
    g_mac = _mac(resolve_via_arp(world, "r", "a", str(world.nodes["g"].ip)))
    write_wanted(
        node, entries.wanted(world.r.tables, world.r.resolver.cache, {a.interface: LOOPBACK})
    )
    frame = ethernet(g_mac, _mac(a.mac), 0x0800, bytes(IP(src=POOL_IP, dst="10.0.0.3") / UDP()))
    drops = world.r.counters.drops[DropReason.SPOOFED_SOURCE_IP]
    assert _sends(world, node, "r", "a", frame) == TC_ACT_OK
    assert world.r.counters.drops[DropReason.SPOOFED_SOURCE_IP] == drops + 1


def test_a_requester_reaches_a_remote_member_in_the_kernel(world: Lab, node: Loaded) -> None:
    """a on r to the pool IP, b down: translated to g's pool address on s."""
    _pooled(world)
    a = world.nodes["a"]
    pool_mac = _mac(resolve_via_arp(world, "r", "a", POOL_IP))
    ports = {a.interface: LOOPBACK, world.nodes["b"].interface: B_IFINDEX}
    maps = entries.wanted(world.r.tables, world.r.resolver.cache, ports)
    [raw] = [v for k, v in maps["onm_mappings"].items() if k.endswith(POOL)]
    assert layout.MappingValue.from_buffer_copy(raw).flags == 0  # a member, reached as a node
    write_wanted(node, maps)
    _agree(world, node, "r", "a", pool_mac, str(a.ip), POOL_IP)


def test_a_requester_reaches_a_member_next_door_in_the_kernel(world: Lab, node: Loaded) -> None:
    """a on r to the pool IP, b up (nearest): delivered to b as sent, b's deliveries counted."""
    _pooled(world, b_down=False)
    a, b = world.nodes["a"], world.nodes["b"]
    pool_mac = _mac(resolve_via_arp(world, "r", "a", POOL_IP))
    ports = {a.interface: LOOPBACK, b.interface: B_IFINDEX}
    write_wanted(node, entries.wanted(world.r.tables, world.r.resolver.cache, ports, {b.interface}))
    address = _pool_address(world, "r")
    before = node.maps.pool_deliveries().get(address, 0)
    verdicts = _agree(world, node, "r", "a", pool_mac, str(a.ip), POOL_IP)
    in_kernel = node.maps.pool_deliveries()[address] - before
    assert in_kernel == verdicts[TC_ACT_REDIRECT] + 2  # and the bad ICMP checksums, as the core
    assert world.r.monitor.delivered[(b.interface, POOL)] > in_kernel  # its own hand-overs too
