"""Same vectors, both datapaths: the compiled eBPF programs against the Python SIIT core.

Every frame runs through the real program with BPF_PROG_TEST_RUN, its maps filled with the two
endpoints the agent's `PairMapper` would use. The program must either redirect exactly the
bytes `translate_4to6` / `translate_6to4` return, or drop for the reason the core drops for, or
hand the frame to the slow path (the userspace core) untouched; never anything else. The
vectors are the SIIT cases of tests/unit/packet/siit (families of headers, sizes, TTLs, TOS,
DF, options, fragments, ICMP errors, bad checksums) and the hostile seeds of the fuzz corpus.

Node to node on one host: the same IPv4 vectors from a to b, both on host r of the agent core's
world (`support.agent_world`), the node program's maps written by `entries.wanted` from r's own
tables and resolution cache; a redirected frame must be exactly the core's `ToNode` (the frame
to b's MAC, the packet as sent), a drop the core's reason.
"""

from __future__ import annotations

import ctypes
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
from scapy.packet import Packet, Raw

from fuzz.targets import fix_checksums
from onm.agent.actions import ToNode
from onm.agent.datapath.ebpf import entries, layout
from onm.agent.datapath.ebpf.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from onm.packet import admission
from onm.packet.drop import DropReason
from onm.packet.mapper import PairMapper
from onm.packet.siit import (
    Drop,
    SiitConfig,
    Translated,
    translate_4to6,
    translate_6to4,
)
from support import bpf_harness
from support.agent_world import NOW, Lab, resolve_via_arp
from support.agent_world import lab as world
from support.bpf_harness import (
    AGENT,
    HOST_A,
    HOST_B,
    IDENTIFICATION,
    NODE,
    PEER,
    PORT_MAC,
    ROOT,
    SENDER_MAC,
    TARGET_MAC,
    Loaded,
    Outcome,
    ethernet,
    fill_node,
    fill_substrate,
    substrate,
    v4,
    verdicts_of,
    write_wanted,
)

CORPUS = ROOT / "tests" / "fuzz" / "corpus"
CONFIGS = {"agent": AGENT, "rfc": SiitConfig(), "small": SiitConfig(ipv6_mtu=1280, copy_tos=False)}

node_fixture = bpf_harness.node_fixture  # the shared fixtures `node` and `sub`
sub_fixture = bpf_harness.sub_fixture
__all__ = ["world"]  # the agent core's world, a fixture used by name


def _bytes(packet: Packet | bytes) -> bytes:
    return packet if isinstance(packet, bytes) else bytes(packet)


def ipv4_vectors(node: str = NODE, peer: str = PEER) -> Iterator[tuple[str, bytes]]:
    """IPv4 datagrams from `node` to `peer`, as the SIIT unit tests build them."""
    base = {"src": node, "dst": peer}
    for size in (0, 1, 3, 64, 1000, 1259, 1260, 1400, 1460, 1472):
        data = Raw(bytes(i % 251 for i in range(size)))
        for flags in ("", "DF"):
            yield (
                f"udp-{size}-{flags}",
                bytes(IP(flags=flags, **base) / UDP(sport=5, dport=53) / data),
            )
            yield f"tcp-{size}-{flags}", bytes(IP(flags=flags, **base) / TCP(flags="PA") / data)
            yield f"echo-{size}-{flags}", bytes(IP(flags=flags, **base) / ICMP(id=7, seq=9) / data)
        yield f"reply-{size}", bytes(IP(**base) / ICMP(type=0, id=7, seq=9) / data)
    for ttl in (0, 1, 2, 64, 255):
        yield f"ttl-{ttl}", bytes(IP(ttl=ttl, **base) / UDP() / b"x")
    for tos in (0, 0x10, 0xB8, 0xFF):
        yield f"tos-{tos}", bytes(IP(tos=tos, **base) / TCP() / b"y")
    yield "udp-zero", bytes(IP(**base) / UDP(chksum=0) / b"zero")
    yield "bad-ipv4-checksum", bytes(IP(chksum=0x1234, **base) / UDP() / b"z")
    yield "bad-icmp-checksum", bytes(IP(**base) / ICMP(chksum=0x1234) / b"z")
    yield "bad-icmp-checksum-odd", bytes(IP(**base) / ICMP(chksum=0) / b"odd")
    yield "options-nop", bytes(IP(options=[IPOption_NOP()] * 4, **base) / UDP() / b"o")
    yield "options-rr", bytes(IP(options=[IPOption_RR()], **base) / UDP() / b"o")
    yield "fragment-first", bytes(IP(flags="MF", **base) / UDP() / bytes(64))
    yield "fragment-later", bytes(IP(frag=8, **base) / Raw(bytes(64)))
    quote = bytes(IP(src=peer, dst=node) / UDP(sport=53, dport=5) / b"q")
    yield "icmp-unreachable", bytes(IP(**base) / ICMP(type=3, code=3) / quote)
    yield "icmp-time-exceeded", bytes(IP(**base) / ICMP(type=11, code=0) / quote)
    yield "icmp-timestamp", bytes(IP(**base) / ICMP(type=13) / bytes(12))
    yield "igmp", bytes(IP(proto=2, **base) / Raw(bytes(8)))
    yield "gre", bytes(IP(proto=47, **base) / Raw(bytes(8)))
    yield "tcp-truncated", bytes(IP(proto=6, **base) / Raw(bytes(10)))
    yield "tcp-data-offset-4", bytes(IP(**base) / TCP(dataofs=4) / b"d")
    yield "tcp-data-offset-past", bytes(IP(**base) / TCP(dataofs=15) / b"d")
    yield "udp-length-short", bytes(IP(**base) / UDP(len=9) / b"ud")
    yield "udp-length-long", bytes(IP(**base) / UDP(len=99) / b"ud")
    yield "udp-truncated", bytes(IP(proto=17, **base) / Raw(bytes(5)))
    yield "icmp-truncated", bytes(IP(proto=1, **base) / Raw(bytes(6)))
    yield "padded", bytes(IP(**base) / UDP() / b"p") + bytes(6)
    yield "total-length-long", bytes(IP(len=200, **base) / UDP() / b"l")
    yield "illegal-source", bytes(IP(src="127.0.0.1", dst=peer) / UDP() / b"i")
    yield "version-6", b"\x65" + bytes(IP(**base) / UDP())[1:]
    yield "header-length-4", b"\x44" + bytes(IP(**base) / UDP())[1:]


def corpus(target: str) -> Iterator[tuple[str, bytes]]:
    """The fuzz corpus' seeds and crashers (their first octet picks config and mapper there;
    here the packet is what matters, its checksums fixed as the fuzz target does)."""
    for path in sorted(Path(CORPUS / target).iterdir()):
        data = path.read_bytes()
        packet = fix_checksums(data[1:]) if data and data[0] & 8 else data[1:]
        yield f"{target}/{path.name}", packet


def check_node(node: Loaded, config: SiitConfig, packet: bytes) -> Outcome:
    """Run one IPv4 datagram from the node; compare with `translate_4to6` for the same pair."""
    src = packet[12:16] if len(packet) >= 20 else v4(NODE)
    dst = packet[16:20] if len(packet) >= 20 else v4(PEER)
    src6, dst6 = substrate(HOST_A, src), substrate(HOST_B, dst)
    fill_node(node, config, src, src6, dst, dst6)
    frame = ethernet(TARGET_MAC, PORT_MAC, 0x0800, packet)
    out = node.run(frame)
    core = translate_4to6(packet, PairMapper(src, src6, dst, dst6), config)
    refused = admission.check_ipv4(packet, admission.SIIT)  # what the agent checks first
    if out.verdict == TC_ACT_REDIRECT:
        assert refused is None, refused
        assert out.packet[:14] == TARGET_MAC + PORT_MAC + b"\x86\xdd"
        assert isinstance(core, Translated), core
        assert core.packets == (out.packet[14:],)
    elif out.verdict == TC_ACT_SHOT:
        assert (refused or core) in (out.drop, Drop(out.drop)), (out, refused, core)
    return out


def check_substrate(sub: Loaded, config: SiitConfig, packet: bytes) -> Outcome:
    """Run one IPv6 packet from the substrate; compare with `translate_6to4` for the same pair."""
    source = packet[8:24] if len(packet) >= 40 else substrate(HOST_B, v4(PEER))
    destination = packet[24:40] if len(packet) >= 40 else substrate(HOST_A, v4(NODE))
    node_ip = destination[12:16]
    fill_substrate(
        sub, config, destination, node_ip, source, vni=int.from_bytes(source[9:12], "big")
    )
    frame = ethernet(PORT_MAC, SENDER_MAC, 0x86DD, packet)
    out = sub.run(frame)
    mapper = PairMapper(node_ip, destination, source[12:16], source)
    core = translate_6to4(packet, mapper, config, IDENTIFICATION)
    refused = admission.check_ipv6(packet, admission.SIIT)  # what the agent checks first
    if out.verdict == TC_ACT_REDIRECT:
        assert refused is None, refused
        assert out.packet[:14] == PORT_MAC + SENDER_MAC + b"\x08\x00"
        assert isinstance(core, Translated), core
        assert core.packets == (out.packet[14:],)
    elif out.verdict == TC_ACT_SHOT:
        assert (refused or core) in (out.drop, Drop(out.drop)), (out, refused, core)
    return out


def ipv6_vectors() -> Iterator[tuple[str, bytes]]:
    """IPv6 packets from PEER's host to NODE's, as the 6->4 unit tests build them."""
    base = {
        "src": str(ipaddress.IPv6Address(substrate(HOST_B, v4(PEER)))),
        "dst": str(ipaddress.IPv6Address(substrate(HOST_A, v4(NODE)))),
    }
    for size in (0, 1, 3, 64, 1000, 1220, 1240, 1241, 1400, 1440, 1460):
        data = Raw(bytes(i % 251 for i in range(size)))
        yield f"udp-{size}", bytes(IPv6(**base) / UDP(sport=5, dport=53) / data)
        yield f"tcp-{size}", bytes(IPv6(**base) / TCP(flags="PA") / data)
        yield f"echo-{size}", bytes(IPv6(**base) / ICMPv6EchoRequest(id=7, seq=9) / data)
        yield f"reply-{size}", bytes(IPv6(**base) / ICMPv6EchoReply(id=7, seq=9) / data)
    for hlim in (0, 1, 2, 64, 255):
        yield f"hlim-{hlim}", bytes(IPv6(hlim=hlim, **base) / UDP() / b"x")
    for tc in (0, 0x10, 0xB8, 0xFF):
        yield f"tc-{tc}", bytes(IPv6(tc=tc, fl=0x12345, **base) / TCP() / b"y")
    yield "udp-zero", bytes(IPv6(**base) / UDP(chksum=0) / b"zero")
    yield "bad-icmp-checksum", bytes(IPv6(**base) / ICMPv6EchoRequest(cksum=0x1234) / b"z")
    yield "fragment", bytes(IPv6(**base) / IPv6ExtHdrFragment(m=1) / UDP() / bytes(64))
    yield "payload-length-long", bytes(IPv6(plen=300, **base) / UDP() / b"l")
    yield "padded", bytes(IPv6(**base) / UDP() / b"p") + bytes(6)
    yield "tcp-truncated", bytes(IPv6(nh=6, **base) / Raw(bytes(10)))
    yield "tcp-data-offset-4", bytes(IPv6(**base) / TCP(dataofs=4) / b"d")
    yield "udp-length-short", bytes(IPv6(**base) / UDP(len=9) / b"ud")
    yield "hop-by-hop", bytes(IPv6(nh=0, **base) / Raw(bytes(8)) / UDP() / b"h")
    yield "icmp-truncated", bytes(IPv6(nh=58, **base) / Raw(bytes(6)))


NODE_VECTORS = [*ipv4_vectors(), *corpus("siit_4to6"), *corpus("plain_4to6")]
SUBSTRATE_VECTORS = [*ipv6_vectors(), *corpus("siit_6to4"), *corpus("plain_6to4")]


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_node_ingress_agrees_with_the_core(node: Loaded, config_name: str) -> None:
    verdicts = verdicts_of(check_node, node, CONFIGS[config_name], NODE_VECTORS)
    # Not vacuous: the fast path translated, dropped and handed over.
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 30, verdicts
    assert verdicts.get(TC_ACT_SHOT, 0) >= 2, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 10, verdicts


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_substrate_ingress_agrees_with_the_core(sub: Loaded, config_name: str) -> None:
    verdicts = verdicts_of(check_substrate, sub, CONFIGS[config_name], SUBSTRATE_VECTORS)
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 30, verdicts
    assert verdicts.get(TC_ACT_SHOT, 0) >= 1, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 5, verdicts


def test_expected_fast_path_outcomes(node: Loaded, sub: Loaded) -> None:
    """A few vectors pinned to the outcome each must have (so agreement is not by hand-over)."""
    named = dict(NODE_VECTORS)
    expect = {
        "udp-64-DF": TC_ACT_REDIRECT,
        "echo-1000-": TC_ACT_REDIRECT,
        "bad-ipv4-checksum": TC_ACT_SHOT,
        "bad-icmp-checksum": TC_ACT_SHOT,
        "options-nop": TC_ACT_OK,
        "fragment-first": TC_ACT_OK,
        "icmp-unreachable": TC_ACT_OK,
    }
    for name, verdict in expect.items():
        assert check_node(node, AGENT, named[name]).verdict == verdict, name
    named6 = dict(SUBSTRATE_VECTORS)
    for name, verdict in {
        "tcp-1000": TC_ACT_REDIRECT,
        "echo-64": TC_ACT_REDIRECT,
        "bad-icmp-checksum": TC_ACT_SHOT,
        "fragment": TC_ACT_OK,
    }.items():
        assert check_substrate(sub, AGENT, named6[name]).verdict == verdict, name
    assert check_node(node, AGENT, named["icmp-unreachable"]).slow is layout.SlowPath.ICMP_NOT_ECHO


# --- node to node on one host ----------------------------------------------------------------
B_IFINDEX = 9
"""b's port (any ifindex but the test run's loopback, a's)."""


def test_node_to_node_on_one_host_agrees_with_the_core(world: Lab, node: Loaded) -> None:
    a, b = world.nodes["a"], world.nodes["b"]
    b_mac = bytes.fromhex(resolve_via_arp(world, "r", "a", str(b.ip)).replace(":", ""))
    core = world.r
    ports = {a.interface: bpf_harness.LOOPBACK, b.interface: B_IFINDEX}
    write_wanted(node, entries.wanted(core.tables, core.resolver.cache, ports, {b.interface}))
    a_mac = bytes.fromhex(a.mac.replace(":", ""))
    verdicts: dict[int, int] = {}
    for name, packet in ipv4_vectors(str(a.ip), str(b.ip)):
        frame = ethernet(b_mac, a_mac, 0x0800, packet)
        drops = dict(core.counters.drops)
        actions = core.node_frame(a.interface, frame, NOW)
        out = node.run(frame)
        verdicts[out.verdict] = verdicts.get(out.verdict, 0) + 1
        if out.verdict == TC_ACT_REDIRECT:
            assert actions == [ToNode(b.interface, out.packet)], name
            assert out.packet == frame, name  # b's MAC as told, a's: the frame as sent
        elif out.verdict == TC_ACT_SHOT:
            assert actions == [], (name, actions)
            assert out.drop is not None
            assert core.counters.drops[out.drop] == drops.get(out.drop, 0) + 1, name
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 30, verdicts
    assert verdicts.get(TC_ACT_SHOT, 0) >= 2, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 10, verdicts


def test_a_local_target_in_another_network_is_dropped_as_the_core_does(
    world: Lab, node: Loaded
) -> None:
    """A mapping to a node next door in another network (a manager's mistake) is refused."""
    a, b = world.nodes["a"], world.nodes["b"]
    b_mac = bytes.fromhex(resolve_via_arp(world, "r", "a", str(b.ip)).replace(":", ""))
    core = world.r
    ports = {a.interface: bpf_harness.LOOPBACK, b.interface: B_IFINDEX}
    maps = entries.wanted(core.tables, core.resolver.cache, ports, {b.interface})
    for key, raw in list(maps["onm_locals"].items()):
        value = layout.LocalValue.from_buffer_copy(raw)
        if value.ifindex == B_IFINDEX:
            value.vni ^= 1
            maps["onm_locals"][key] = bytes(value)
    write_wanted(node, maps)
    packet = dict(ipv4_vectors(str(a.ip), str(b.ip)))["udp-64-DF"]
    out = node.run(ethernet(b_mac, bytes.fromhex(a.mac.replace(":", "")), 0x0800, packet))
    assert (out.verdict, out.drop) == (TC_ACT_SHOT, DropReason.NETWORK_MISMATCH)


def test_node_ingress_stamps_the_mapping_it_forwards_with(node: Loaded) -> None:
    """`MappingValue.used`: monotonic time of the last frame (the agent's refresh reads it);
    the agent writes 0, a frame passed to the slow path by its mapping's flags stamps nothing."""
    packet = dict(NODE_VECTORS)["udp-64-DF"]
    src, dst = packet[12:16], packet[16:20]
    key = bpf_harness.mapping_key(bpf_harness.LOOPBACK, dst)
    size = ctypes.sizeof(layout.MappingValue)

    def used() -> int:
        raw = node.maps["onm_mappings"].lookup_raw(key, size)
        assert raw is not None
        return layout.MappingValue.from_buffer_copy(raw).used

    src6, dst6 = substrate(HOST_A, src), substrate(HOST_B, dst)
    fill_node(node, AGENT, src, src6, dst, dst6, mapping_flags=layout.MappingFlag.POOL)
    assert node.run(ethernet(TARGET_MAC, PORT_MAC, 0x0800, packet)).verdict == TC_ACT_OK
    assert used() == 0
    before = time.monotonic_ns() >> layout.USED_SHIFT
    assert check_node(node, AGENT, packet).verdict == TC_ACT_REDIRECT
    assert before <= used() <= time.monotonic_ns() >> layout.USED_SHIFT
