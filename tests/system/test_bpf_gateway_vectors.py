"""An edge gateway's side in the kernel, both datapaths (issue #11): substrate_ingress against
the agent core's `onm.agent.gateway` and `onm.agent.receive`.

The agent core's world with edge pool egress (`support.edge_world`). What r's core sends node
a's flows to gateway e1 with (a's frames to the router MAC, through r's core) runs through gw1's
core and through substrate_ingress.o with the maps `entries.wanted` writes from gw1's tables
(its duty's TUN given an ifindex): every datagram the program redirects into the TUN's ingress
is byte for byte the core's `ToTenant`, a drop the core's reason, the rest the slow path's,
untouched. The other way, gw1's core's replies from the external network (as it sends what the
kernel gave its TUN) run through r's core and substrate_ingress with r's maps: the kernel
delivers a gateway's reply to a as the core does, from the router MAC, and leaves to the core
what only it judges (an internal or a resident's address from a gateway's /64).

gateway_egress (the TUN's egress) sees IPv4 at offset 0, which BPF_PROG_TEST_RUN (it builds an
Ethernet frame) cannot give it: tests/system/test_edge_traffic.py drives it with real traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw, raw

from onm.addressing import embed_ipv4
from onm.agent.actions import ToNode, ToSubstrate, ToTenant
from onm.agent.core import AgentCore
from onm.agent.datapath.ebpf import entries
from onm.agent.datapath.ebpf.edge_maps import edge_maps, write_edge
from onm.agent.datapath.ebpf.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from onm.agent.gateway import TenantCounts
from onm.agent.tables import router_mac
from onm.packet import checksum
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from support.agent_world import NOW, Lab
from support.agent_world import lab as world
from support.bpf_harness import IDENTIFICATION, LOOPBACK, Loaded, Outcome, ethernet, write_wanted
from support.edge_world import EdgeWorld, edge_world

__all__ = ["world"]

TUN = 77
"""The ifindex gw1's TUN has in these runs (the program only names it in its redirect)."""
WEB = "30.0.2.2"
CHECKSUM_AT = {6: 16, 17: 6, 58: 2}
"""Where TCP, UDP and ICMPv6 keep their checksum (RFC 9293 3.1, RFC 768, RFC 4443 2.1)."""


@pytest.fixture(name="sub")
def sub_fixture() -> Iterator[Loaded]:
    """A fresh substrate_ingress.o per test (the edge maps are written outside `put`)."""
    loaded = Loaded("substrate_ingress", "onm_substrate_ingress")
    yield loaded
    loaded.close()


def _crossing(edge: EdgeWorld, l4: object, dst: str = WEB) -> bytes | None:
    """What r's core sends for a's datagram to `dst` (None: not to gw1)."""
    lab = edge.lab
    a = lab.nodes["a"]
    frame = raw(
        Ether(src=a.mac, dst=format_mac(router_mac(edge.vni))) / IP(src=str(a.ip), dst=dst) / l4
    )
    sent = [x for x in lab.r.node_frame(a.interface, frame, NOW) if isinstance(x, ToSubstrate)]
    if len(sent) != 1 or int.from_bytes(sent[0].packet[24:32], "big") != edge.prefixes["gw1"]:
        return None
    return sent[0].packet


def _to_gw1(edge: EdgeWorld, count: int) -> list[tuple[str, bytes]]:
    """a's datagrams that r's core sends to e1: TCP, UDP and ICMP echo of several sizes, to
    addresses of the internet (hashed on the pair by default: some go to e2)."""
    found: list[tuple[str, bytes]] = []
    port = 40000
    while len(found) < count:
        port += 1
        l4 = [
            TCP(sport=port, dport=80, flags="S"),
            UDP(sport=port, dport=53) / Raw(bytes(port % 900)),
            ICMP(id=port, seq=1) / Raw(b"ping" * (port % 50)),
        ][port % 3]
        packet = _crossing(edge, l4, f"30.0.{port % 250 + 1}.{port % 7 + 1}")  # the hash's
        if packet is not None:
            found.append((f"{type(l4).__name__} from port {port}", packet))
    return found


def _hostile(edge: EdgeWorld, packet: bytes, icmp: bytes) -> list[tuple[str, bytes]]:
    """One of a's datagrams to e1 (and an echo one) made wrong, each a way a sender could."""
    lab = edge.lab
    g = lab.nodes["g"]  # on host s
    prefix = edge.prefixes["gw1"]

    def with_source(source: bytes) -> bytes:
        return packet[:8] + source + packet[24:]

    def with_destination(destination: bytes) -> bytes:
        return packet[:24] + destination + packet[40:]

    return [
        (
            "an external address inside the network",
            with_destination(embed_ipv4(prefix, edge.vni, bytes([10, 0, 0, 9]))),
        ),
        (
            "a network gw1 does not serve",
            with_destination(embed_ipv4(prefix, edge.vni + 1, bytes([30, 0, 2, 2]))),
        ),
        ("a spoofed sender (g's IPv4 on r's /64)", with_source(packet[8:20] + g.ip.packed)),
        (
            "a sender of another network",
            with_source(packet[8:9] + (edge.vni + 1).to_bytes(3, "big") + packet[12:24]),
        ),
        ("hop limit 0", packet[:7] + b"\x00" + packet[8:]),
        (
            "a payload length too long",
            packet[:4] + (len(packet) - 39).to_bytes(2, "big") + packet[6:],
        ),
        ("an echo's checksum wrong", icmp[:42] + bytes([icmp[42] ^ 0xFF]) + icmp[43:]),
        ("an echo truncated", icmp[:4] + (4).to_bytes(2, "big") + icmp[6:44]),
    ]


def _at_gateway(gw: AgentCore, sub: Loaded, packet: bytes) -> Outcome:
    """`packet` through gw1's core and the kernel: the outcomes agree."""
    drops = dict(gw.counters.drops)
    gw._state.identification = IDENTIFICATION - 1  # the kernel's generator is pinned there
    sub.maps.set_identification(IDENTIFICATION)
    actions = gw.substrate_packet(packet, NOW)
    out = sub.run(ethernet(b"\x02" * 6, b"\x04" * 6, 0x86DD, packet))
    tenant = [a for a in actions if isinstance(a, ToTenant)]
    if out.verdict == TC_ACT_REDIRECT:
        assert len(actions) == 1 and tenant, actions
        assert tenant[0].packet == out.packet[14:], (tenant, out.packet.hex())
    elif out.verdict == TC_ACT_SHOT:
        assert not tenant, actions
        assert out.drop is not None
        assert gw.counters.drops[out.drop] == drops.get(out.drop, 0) + 1, out.drop
    return out


def _gateway_maps(edge: EdgeWorld, sub: Loaded) -> AgentCore:
    gw = edge.gw["gw1"]
    write_wanted(
        sub, entries.wanted(gw.tables, gw.resolver.cache, {}, frozenset(), {edge.vni: TUN})
    )
    return gw


def _tally(
    vectors: list[tuple[str, bytes]], run: Callable[[bytes], Outcome]
) -> dict[int, list[str]]:
    """Each vector run (its failure names it): verdict -> the vectors that had it."""
    verdicts: dict[int, list[str]] = {}
    for name, packet in vectors:
        try:
            out = run(packet)
        except AssertionError as exc:
            raise AssertionError(f"vector {name}: {exc}") from None
        verdicts.setdefault(out.verdict, []).append(name)
    return verdicts


def test_what_a_sends_enters_the_tun_as_the_core_writes_it(world: Lab, sub: Loaded) -> None:
    edge = edge_world(world, {})
    gw = _gateway_maps(edge, sub)
    vectors = _to_gw1(edge, 60)
    before = sub.maps.tenant_counts().get(edge.vni, TenantCounts())
    verdicts = _tally(vectors, lambda p: _at_gateway(gw, sub, p))
    assert len(verdicts.get(TC_ACT_REDIRECT, [])) == len(vectors), verdicts
    counts = sub.maps.tenant_counts()[edge.vni]
    assert counts.egress_packets - before.egress_packets == len(vectors)  # for the metrics
    sent = sum(len(p) - 20 for _, p in vectors)  # as IPv4 datagrams
    assert counts.egress_bytes - before.egress_bytes == sent


def test_hostile_packets_to_a_gateway_are_refused_as_the_core(world: Lab, sub: Loaded) -> None:
    edge = edge_world(world, {})
    gw = _gateway_maps(edge, sub)
    packet = next(p for name, p in _to_gw1(edge, 6) if name.startswith("TCP"))
    icmp = next(p for name, p in _to_gw1(edge, 6) if name.startswith("ICMP"))
    verdicts = _tally(_hostile(edge, packet, icmp), lambda p: _at_gateway(gw, sub, p))
    assert TC_ACT_REDIRECT not in verdicts, verdicts
    shot = verdicts.get(TC_ACT_SHOT, [])
    assert "an external address inside the network" in shot, verdicts
    assert "an echo's checksum wrong" in shot, verdicts
    assert gw.counters.drops[DropReason.GATEWAY_INTERNAL_DESTINATION] >= 1
    assert len(verdicts.get(TC_ACT_OK, [])) >= 4, verdicts  # the core judges (and drops) them


def _anycast_crossings(edge: EdgeWorld, count: int) -> list[tuple[str, bytes]]:
    """What r's core sends for a's flows in anycast mode: to the pool's shared /64 from a's
    address steered to each flow's slot; and each also to gw1's own /64 (as in direct mode),
    still from the steered source, which a gateway takes too (`_sent_by`)."""
    lab = edge.lab
    a = lab.nodes["a"]
    assert edge.anycast is not None
    found: list[tuple[str, bytes]] = []
    for n in range(count):
        l4 = [
            TCP(sport=41000 + n, dport=80, flags="S"),
            UDP(sport=41000 + n, dport=53) / Raw(bytes(n * 7)),
            ICMP(id=n, seq=1) / Raw(b"ping" * n),
        ][n % 3]
        frame = raw(
            Ether(src=a.mac, dst=format_mac(router_mac(edge.vni)))
            / IP(src=str(a.ip), dst=f"30.0.{n % 250 + 1}.{n % 7 + 1}")
            / l4
        )
        [sent] = [
            x for x in lab.r.node_frame(a.interface, frame, NOW) if isinstance(x, ToSubstrate)
        ]
        packet = sent.packet
        assert int.from_bytes(packet[24:32], "big") == edge.anycast.value
        found.append((f"{type(l4).__name__} {n} to the anycast /64", packet))
        own = edge.prefixes["gw1"].to_bytes(8, "big")
        direct = bytearray(packet[:24] + own + packet[32:])
        at = 40 + CHECKSUM_AT[packet[6]]  # the pseudo-header's destination changed
        old = int.from_bytes(direct[at : at + 2], "big")
        direct[at : at + 2] = checksum.adjust_bytes(old, packet[24:32], own).to_bytes(2, "big")
        found.append((f"{type(l4).__name__} {n} to gw1's /64", bytes(direct)))
    return found


def test_an_anycast_gateway_takes_steered_senders_into_the_tun_as_the_core(
    world: Lab, sub: Loaded
) -> None:
    """Anycast mode: what a's host sends the pool's shared /64 (or gw1's own) from a steered
    variant of a's address enters gw1's TUN in the kernel, byte for byte the core's."""
    edge = edge_world(world, {"mode": "anycast", "hash": "src,dst,proto,sport,dport"})
    gw = _gateway_maps(edge, sub)
    vectors = _anycast_crossings(edge, 30)
    assert len({p[8:24] for _, p in vectors}) > 10  # many steered sources
    verdicts = _tally(vectors, lambda p: _at_gateway(gw, sub, p))
    assert len(verdicts.get(TC_ACT_REDIRECT, [])) == len(vectors), verdicts


def test_steered_variants_prove_no_more_than_the_address(world: Lab, sub: Loaded) -> None:
    """A steered variant is the same node's address, nothing else: of a pool address, of
    another network's or host's node, with U/L set, it is refused as the core refuses it."""
    edge = edge_world(world, {"mode": "anycast"})
    gw = _gateway_maps(edge, sub)
    [(_, packet)] = _anycast_crossings(edge, 1)[:1]
    g = edge.lab.nodes["g"]  # on host s

    def with_source(source: bytes) -> bytes:
        return packet[:8] + source + packet[24:]

    source = packet[8:24]
    vectors = [
        ("g's IPv4, a's steered address", with_source(source[:12] + g.ip.packed)),
        ("U/L set", with_source(source[:8] + bytes([source[8] | 0x02]) + source[9:])),
        ("another host's /64", with_source(bytes([source[0] ^ 1]) + source[1:])),
    ]
    verdicts = _tally(vectors, lambda p: _at_gateway(gw, sub, p))
    assert TC_ACT_REDIRECT not in verdicts, verdicts
    assert gw.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] >= len(vectors)


def _reply(edge: EdgeWorld, l4: object, source: str = WEB) -> bytes:
    """gw1's core's substrate packet for the kernel's datagram from `source` to a."""
    a = edge.lab.nodes["a"]
    packet = raw(IP(src=source, dst=str(a.ip)) / l4)
    [sent] = [
        x for x in edge.gw["gw1"].tenant_packet(edge.vni, packet) if isinstance(x, ToSubstrate)
    ]
    return sent.packet


def _at_node_host(edge: EdgeWorld, sub: Loaded, packet: bytes) -> Outcome:
    """`packet` through r's core and the kernel, with r's maps: the outcomes agree."""
    r = edge.lab.r
    drops = dict(r.counters.drops)
    r._state.identification = IDENTIFICATION - 1
    sub.maps.set_identification(IDENTIFICATION)
    actions = r.substrate_packet(packet, NOW)
    out = sub.run(ethernet(b"\x02" * 6, b"\x04" * 6, 0x86DD, packet))
    if out.verdict == TC_ACT_REDIRECT:
        assert actions == [ToNode(edge.lab.nodes["a"].interface, out.packet)], actions
        assert out.packet[6:12] == router_mac(edge.vni)  # from outside, through the router
    elif out.verdict == TC_ACT_SHOT:
        assert not [x for x in actions if isinstance(x, ToNode)], actions
        assert out.drop is not None
        assert r.counters.drops[out.drop] == drops.get(out.drop, 0) + 1, out.drop
    return out


def _replies(edge: EdgeWorld, count: int, echo: bool) -> list[tuple[str, bytes]]:
    """gw1's core's replies to a: TCP and UDP of several sizes (and echo replies)."""
    return [
        (f"{kind} {n}", _reply(edge, l4))
        for n in range(count)
        for kind, l4 in (
            ("TCP", TCP(sport=80, dport=40000 + n, flags="SA") / Raw(bytes(n * 100))),
            ("UDP", UDP(sport=53, dport=40000 + n) / Raw(bytes(n * 50 + 1))),
            ("echo reply", ICMP(type=0, id=n, seq=1) / Raw(b"pong" * n)),
        )
        if echo or kind != "echo reply"
    ]


def _node_maps(edge: EdgeWorld, sub: Loaded) -> None:
    r = edge.lab.r
    a = edge.lab.nodes["a"]
    write_wanted(sub, entries.wanted(r.tables, r.resolver.cache, {a.interface: LOOPBACK}))
    write_edge(sub.maps, edge_maps(r.tables, r.egress.probes.alive, None), None)


def test_a_gateways_replies_reach_a_in_the_kernel_as_the_core(world: Lab, sub: Loaded) -> None:
    edge = edge_world(world, {})
    _node_maps(edge, sub)
    vectors = _replies(edge, 10, echo=True)
    verdicts = _tally(vectors, lambda p: _at_node_host(edge, sub, p))
    assert len(verdicts.get(TC_ACT_REDIRECT, [])) == len(vectors), verdicts


def test_what_only_the_core_judges_from_a_gateway_is_left_to_it(world: Lab, sub: Loaded) -> None:
    """From a gateway's /64, an address inside the network or a resident's: the core drops it
    (spoofed); the kernel hands it over. From no gateway's /64: both drop it."""
    edge = edge_world(world, {})
    _node_maps(edge, sub)
    b = edge.lab.nodes["b"]
    g = edge.lab.nodes["g"]
    syn_ack = TCP(sport=80, dport=40000, flags="SA")
    good = _reply(edge, syn_ack)
    stranger = (0xFD00000001019FF).to_bytes(8, "big")

    def sent_from(ip: bytes) -> bytes:  # gw1 itself sends none of these (its own check)
        return good[:20] + ip + good[24:]

    vectors = [
        ("an address inside the network", sent_from(bytes([10, 0, 0, 9]))),
        ("a resident's address (b)", sent_from(b.ip.packed)),
        ("a resident's address (g)", sent_from(g.ip.packed)),
        ("no gateway's /64", good[:8] + stranger + good[16:]),
    ]
    verdicts = _tally(vectors, lambda p: _at_node_host(edge, sub, p))
    assert verdicts.get(TC_ACT_SHOT) == ["no gateway's /64"], verdicts
    assert len(verdicts.get(TC_ACT_OK, [])) == 3, verdicts
    assert edge.lab.r.counters.drops[DropReason.SPOOFED_SUBSTRATE_SOURCE] >= 4


def test_an_anycast_gateways_steered_replies_reach_a_in_the_kernel(world: Lab, sub: Loaded) -> None:
    """gw1's replies in anycast mode go to the variant of a's address the flow's sender used
    (`_reply_to`); a's host delivers them in the kernel as the core's `port_at` does."""
    edge = edge_world(world, {"mode": "anycast", "hash": "src,dst,proto,sport,dport"})
    _node_maps(edge, sub)
    own = edge.lab.r.tables.ports[edge.lab.nodes["a"].interface].substrate
    vectors = _replies(edge, 12, echo=False)
    assert sum(p[24:40] != own for _, p in vectors) > 15  # steered, most of them
    verdicts = _tally(vectors, lambda p: _at_node_host(edge, sub, p))
    assert len(verdicts.get(TC_ACT_REDIRECT, [])) == len(vectors), verdicts
