"""Same vectors, both datapaths, for encapsulated networks (RFC 2473, DESIGN.md section 3).

The IPv4 vectors of test_bpf_vectors (sizes, TTLs, TOS, DF, options, fragments, ICMP errors,
protocols SIIT cannot carry, bad lengths and checksums, the fuzz corpus' hostile seeds) run
through node_ingress on an encapsulated network, and the same datagrams wrapped in IPv6 (and
wrapped wrongly: spoofed inner addresses, other next headers, lengths that disagree) through
substrate_ingress. The program must redirect exactly the bytes `onm.packet.encap` returns
(`encapsulate`; `decapsulate` and admission of the inner datagram), drop for the reason the
core drops for, or hand the frame to the core untouched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.packet import Raw
from test_bpf_vectors import CONFIGS, corpus, ipv4_vectors

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from onm.packet import admission, encap
from onm.packet.drop import DropReason
from onm.packet.mapper import PairMapper
from onm.packet.siit import Drop, SiitConfig, Translated
from support import bpf_harness
from support.bpf_harness import (
    HOST_A,
    HOST_B,
    NODE,
    PEER,
    PORT_MAC,
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
)

node_fixture = bpf_harness.node_fixture  # the shared fixtures `node` and `sub`
sub_fixture = bpf_harness.sub_fixture


def check_node(node: Loaded, config: SiitConfig, packet: bytes) -> Outcome:
    """One IPv4 datagram from the node on an encapsulated network, beside `encapsulate`."""
    src = packet[12:16] if len(packet) >= 20 else v4(NODE)
    dst = packet[16:20] if len(packet) >= 20 else v4(PEER)
    src6, dst6 = substrate(HOST_A, src), substrate(HOST_B, dst)
    fill_node(node, config, src, src6, dst, dst6, encap=True)
    out = node.run(ethernet(TARGET_MAC, PORT_MAC, 0x0800, packet))
    refused = admission.check_ipv4(packet, admission.ENCAP)  # what the agent checks first
    core = encap.encapsulate(packet, PairMapper(src, src6, dst, dst6), config)
    if out.verdict == TC_ACT_REDIRECT:
        assert refused is None, refused
        assert out.packet[:14] == TARGET_MAC + PORT_MAC + b"\x86\xdd"
        assert isinstance(core, Translated), core
        assert core.packets == (out.packet[14:],)
    elif out.verdict == TC_ACT_SHOT:
        assert (refused or core) in (out.drop, Drop(out.drop)), (out, refused, core)
    return out


OUTER_SRC = substrate(HOST_B, v4(PEER))
OUTER_DST = substrate(HOST_A, v4(NODE))


def check_substrate(sub: Loaded, config: SiitConfig, packet: bytes) -> Outcome:
    """One IPv6 packet from PEER's host for NODE, beside `decapsulate` and admission."""
    fill_substrate(sub, config, OUTER_DST, v4(NODE), OUTER_SRC, encap=True)
    out = sub.run(ethernet(PORT_MAC, SENDER_MAC, 0x86DD, packet))
    refused = admission.check_ipv6(packet, admission.ENCAP)
    inner = encap.decapsulate(packet, PairMapper(v4(NODE), OUTER_DST, v4(PEER), OUTER_SRC))
    if refused is None and not isinstance(inner, DropReason):
        refused = admission.check_ipv4(inner, admission.ENCAP, padded=False)
    if out.verdict == TC_ACT_REDIRECT:
        assert refused is None, refused
        assert not isinstance(inner, DropReason), inner
        assert out.packet == PORT_MAC + SENDER_MAC + b"\x08\x00" + inner
    elif out.verdict == TC_ACT_SHOT:
        assert out.drop == (refused or inner), (out, refused, inner)
    return out


def wrapped(inner: bytes, **outer: object) -> bytes:
    """`inner` behind the IPv6 header an entry point gives it (next header 4, hop limit 64)."""
    fields: dict[str, object] = {
        "src": str(ipaddress.IPv6Address(OUTER_SRC)),
        "dst": str(ipaddress.IPv6Address(OUTER_DST)),
        "nh": 4,
        "hlim": encap.TUNNEL_HOP_LIMIT,
    }
    fields.update(outer)
    return bytes(IPv6(**fields) / Raw(inner))  # type: ignore[arg-type]


def ipv6_vectors() -> Iterator[tuple[str, bytes]]:
    """Encapsulated packets from PEER's host to NODE's: every IPv4 vector from PEER wrapped,
    then what no entry point sends."""
    for name, inner in ipv4_vectors(PEER, NODE):
        yield f"wrapped-{name}", wrapped(inner)
    good = bytes(IP(src=PEER, dst=NODE) / UDP(sport=5, dport=53) / b"inner")
    yield "inner-source-spoofed", wrapped(bytes(IP(src="10.0.0.99", dst=NODE) / UDP() / b"s"))
    yield "inner-destination-other", wrapped(bytes(IP(src=PEER, dst="10.0.0.98") / UDP() / b"d"))
    yield "inner-ttl-0", wrapped(bytes(IP(src=PEER, dst=NODE, ttl=0) / UDP() / b"t"))
    yield "next-header-tcp", wrapped(bytes(TCP()), nh=6)
    yield "next-header-ipv6", wrapped(good, nh=41)
    yield (
        "fragment-header",
        bytes(
            IPv6(
                src=str(ipaddress.IPv6Address(OUTER_SRC)), dst=str(ipaddress.IPv6Address(OUTER_DST))
            )
            / IPv6ExtHdrFragment(nh=4)
            / Raw(good)
        ),
    )
    yield "payload-length-long", wrapped(good, plen=len(good) + 9)
    longer = good[:2] + (len(good) + 4).to_bytes(2, "big") + good[4:]
    yield "inner-total-length-long", wrapped(longer)
    yield "inner-truncated", wrapped(good[:12])
    yield "padded", wrapped(good) + bytes(6)
    yield "hop-limit-1", wrapped(good, hlim=1)
    yield "traffic-class", wrapped(good, tc=0xB8, fl=0x12345)


NODE_VECTORS = [*ipv4_vectors(), *corpus("siit_4to6"), *corpus("plain_4to6")]
SUBSTRATE_VECTORS = list(ipv6_vectors())


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_node_ingress_encapsulates_as_the_core(node: Loaded, config_name: str) -> None:
    verdicts = verdicts_of(check_node, node, CONFIGS[config_name], NODE_VECTORS)
    # Not vacuous: the fast path encapsulated, dropped and handed over.
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 40, verdicts
    assert verdicts.get(TC_ACT_SHOT, 0) >= 1, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 5, verdicts


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_substrate_ingress_opens_as_the_core(sub: Loaded, config_name: str) -> None:
    verdicts = verdicts_of(check_substrate, sub, CONFIGS[config_name], SUBSTRATE_VECTORS)
    assert verdicts.get(TC_ACT_REDIRECT, 0) >= 40, verdicts
    assert verdicts.get(TC_ACT_OK, 0) >= 10, verdicts


def test_expected_encap_outcomes(node: Loaded, sub: Loaded) -> None:
    """What encapsulation carries that SIIT does not, in the kernel; what it refuses, not."""
    named = dict(NODE_VECTORS)
    for name, verdict in {
        "udp-64-DF": TC_ACT_REDIRECT,
        "udp-zero": TC_ACT_REDIRECT,  # carried as it is: no checksum to move
        "icmp-unreachable": TC_ACT_REDIRECT,  # carried untouched, its quote too
        "gre": TC_ACT_REDIRECT,
        "bad-icmp-checksum": TC_ACT_REDIRECT,  # not the entry point's to judge
        "bad-ipv4-checksum": TC_ACT_SHOT,
        "options-nop": TC_ACT_OK,
        "fragment-first": TC_ACT_OK,
        "udp-1472-DF": TC_ACT_OK,  # Fragmentation Needed: the core's to build
        "ttl-0": TC_ACT_OK,
    }.items():
        assert check_node(node, bpf_harness.AGENT, named[name]).verdict == verdict, name
    named6 = dict(SUBSTRATE_VECTORS)
    for name, verdict in {
        "wrapped-tcp-1000-": TC_ACT_REDIRECT,
        "wrapped-gre": TC_ACT_REDIRECT,
        "wrapped-icmp-time-exceeded": TC_ACT_REDIRECT,
        "inner-source-spoofed": TC_ACT_OK,
        "next-header-tcp": TC_ACT_OK,
    }.items():
        assert check_substrate(sub, bpf_harness.AGENT, named6[name]).verdict == verdict, name
    out = check_substrate(sub, bpf_harness.AGENT, named6["inner-source-spoofed"])
    assert out.slow is layout.SlowPath.ENCAP
