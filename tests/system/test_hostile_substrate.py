"""Issue #7, defects 2 and 3: what no agent would send is refused by real agents, and counted.

One lab (`hs<pid>`): hosts r and s; tenant z's `znet` (10.0.0.0/24, SIIT) with a and b on r and
g on s; tenant x's `xnet` (encapsulated) with x1 on r and x2 on s. Host s's namespace writes
onto the substrate, to the real substrate addresses of r's nodes, packets whose sources are
where those senders really live, so only what is wrong in them can be why they are refused:
each case of defect 3. Node a writes malformed IPv4 to b, its neighbour on r (defect 2). A
packet socket inside the receiving node's namespace sees every frame that reaches it: nothing
forged may, while a genuine packet sent after the forged ones does; and r's agent's metrics
(`/metrics`) count each forged packet under its reason.
"""

from __future__ import annotations

import ipaddress
import json
import struct
from collections.abc import Callable, Iterator

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw, raw

from onm.lab import netns
from onm.packet.checksum import internet_checksum
from support.datapaths import lab_name
from support.overlay_lab import (
    PUBLISH,
    Lab,
    carrying,
    drop_key,
    eventually,
    ip_json,
    marker,
    metrics_port,
    onm,
    running_lab,
    send_frames,
    sniffing,
    wait_reachable,
)

TOPOLOGY = """\
substrate: {mtu: 1520}
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
tenants: [{name: z}, {name: x}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
  - {name: xnet, tenant: x, cidr: 10.1.0.0/24, encoding: encap}
nodes:
  - {name: a, network: znet, host: r, ip: 10.0.0.2}
  - {name: b, network: znet, host: r, ip: 10.0.0.4}
  - {name: g, network: znet, host: s, ip: 10.0.0.3}
  - {name: x1, network: xnet, host: r, ip: 10.1.0.2}
  - {name: x2, network: xnet, host: s, ip: 10.1.0.3}
"""
PORTS = {"r": 3, "s": 2}


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = lab_name("hs", datapath)
    with running_lab(tmp_path_factory, name, TOPOLOGY, PORTS, 20) as built:
        # The lab's substrate switch is a Linux bridge; with br_netfilter loaded it would check
        # IPv6 headers itself (br_validate_ipv6) and drop or trim what we forge. A hostile
        # substrate has no such switch: let this one forward anything, as a plain switch does.
        netns.set_sysctl(f"onm-{name}-sub", "net.bridge.bridge-nf-call-ip6tables", 0)
        yield built


def where(lab: Lab, node: str) -> str:
    """`node`'s substrate address, from its host's snapshot."""
    host = next(h for h, n in (("r", ("a", "b", "x1")), ("s", ("g", "x2"))) if node in n)
    with lab.client() as client:
        snapshot = client.snapshot(host)
    assert snapshot is not None
    (found,) = (n.substrate_address for n in snapshot.nodes if n.node.name == node)
    return str(ipaddress.IPv6Address(found))


def mac_of(lab: Lab, host: str) -> str:
    (link,) = ip_json(lab.host_ns(host), "link", "show", "dev", "sub0")
    return str(link["address"])


def _payload_length(packet: bytes, value: int) -> bytes:
    return packet[:4] + struct.pack("!H", value) + packet[6:]


def _udp(data: bytes, **fields: object) -> Packet:
    return UDP(sport=4000, dport=4001, **fields) / Raw(data)


# Each case: (name, make(src, dst, marker) -> IPv6 packet bytes, the reason r must count).
SubstrateCase = tuple[str, Callable[[str, str, bytes], bytes], str]
SIIT_CASES: list[SubstrateCase] = [
    ("hop-limit-0", lambda s, d, m: raw(IPv6(src=s, dst=d, hlim=0) / _udp(m)), "ttl_expired"),
    (
        "udp-length-long",
        lambda s, d, m: raw(IPv6(src=s, dst=d) / _udp(m, len=8 + len(m) + 30)),
        "udp_bad_length",
    ),
    (
        "udp-length-short",
        lambda s, d, m: raw(IPv6(src=s, dst=d) / _udp(m, len=12)),
        "udp_bad_length",
    ),
    *(
        (
            f"next-header-{nh}",
            lambda s, d, m, nh=nh: raw(IPv6(src=s, dst=d, nh=nh) / Raw(m)),
            "protocol_not_carried",
        )
        for nh in (59, 50, 132, 255, 41)
    ),
    (
        "hop-by-hop",
        lambda s, d, m: raw(IPv6(src=s, dst=d) / IPv6ExtHdrHopByHop() / _udp(m)),
        "ipv6_extension_not_carried",
    ),
    (
        "garbage-hop-by-hop",
        lambda s, d, m: raw(
            IPv6(src=s, dst=d, nh=0) / Raw(b"\x11\x00\xff\xff\xff\xff\xff\xff" + raw(_udp(m)))
        ),
        "ipv6_extension_not_carried",
    ),
    (
        "fragment-then-esp",
        lambda s, d, m: raw(IPv6(src=s, dst=d) / IPv6ExtHdrFragment(nh=50, m=1) / Raw(m)),
        "protocol_not_carried",
    ),
    (
        "payload-length-past-the-frame",
        lambda s, d, m: _payload_length(raw(IPv6(src=s, dst=d) / _udp(m)), 8 + len(m) + 100),
        "ipv6_truncated",
    ),
    (
        "payload-length-short-of-the-frame",
        lambda s, d, m: _payload_length(raw(IPv6(src=s, dst=d) / _udp(m)), 8 + len(m) - 4),
        "ipv6_bad_payload_length",
    ),
    (
        "version-4",
        lambda s, d, m: b"\x40" + raw(IPv6(src=s, dst=d) / _udp(m))[1:],
        "ipv6_bad_version",
    ),
]


def _ipv4(packet: bytes, at: int, value: bytes, checksum: bool = True) -> bytes:
    """An IPv4 datagram with `value` written at `at`, header checksum made right again."""
    out = bytearray(packet)
    out[at : at + len(value)] = value
    if checksum:
        struct.pack_into("!H", out, 10, 0)
        ihl = max(20, (out[0] & 0x0F) * 4)
        struct.pack_into("!H", out, 10, internet_checksum(bytes(out[:ihl])))
    return bytes(out)


def _inner(m: bytes, **ip: object) -> bytes:
    return raw(IP(src="10.1.0.3", dst="10.1.0.2", **ip) / _udp(m))


ENCAP_CASES: list[SubstrateCase] = [
    (
        "inner-ttl-0",
        lambda s, d, m: raw(IPv6(src=s, dst=d, nh=4) / Raw(_inner(m, ttl=0))),
        "ttl_expired",
    ),
    (
        "inner-total-short-of-outer",
        lambda s, d, m: raw(IPv6(src=s, dst=d, nh=4) / Raw(_inner(m) + b"junk")),
        "ipv4_bad_total_length",
    ),
    (
        "inner-total-past-outer",
        lambda s, d, m: raw(IPv6(src=s, dst=d, nh=4) / Raw(_inner(m)[:-4])),
        "ipv4_truncated",
    ),
    (
        "inner-version-5",
        lambda s, d, m: raw(IPv6(src=s, dst=d, nh=4) / Raw(_ipv4(_inner(m), 0, b"\x55"))),
        "ipv4_bad_version",
    ),
    (
        "inner-udp-length",
        lambda s, d, m: raw(IPv6(src=s, dst=d, nh=4) / Raw(_ipv4(_inner(m), 24, b"\x00\x09"))),
        "udp_bad_length",
    ),
]


def drops_grown(lab: Lab, host: str, before: dict[str, float]) -> dict[str, int]:
    """Every drop counter of `host`'s agent that has grown since `before`, by how much."""
    now = lab.metrics(host)
    grown = {
        k: int(v - before.get(k, 0)) for k, v in now.items() if k.startswith("onm_agent_drops")
    }
    return {k: v for k, v in grown.items() if v}


def expect_drops(lab: Lab, host: str, before: dict[str, float], expected: dict[str, int]) -> None:
    """Wait until `host`'s drop counters have grown by exactly `expected` (a wrong reason or a
    missing count shows in the failure, with what was counted instead)."""
    seen: dict[str, int] = {}

    def done() -> bool:
        seen.clear()
        seen.update(drops_grown(lab, host, before))
        return seen == expected

    try:
        eventually(done, f"{host}'s agent counting {expected}", 5 * PUBLISH)
    except pytest.fail.Exception:
        pytest.fail(f"{host}'s agent counted {seen}, expected {expected}")


def _counted(cases: list[SubstrateCase]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, _, reason in cases:
        counts[drop_key(reason)] = counts.get(drop_key(reason), 0) + 1
    return counts


@pytest.mark.parametrize(
    ("sender", "target", "cases"),
    [("g", "a", SIIT_CASES), ("x2", "x1", ENCAP_CASES)],
    ids=["siit", "encap"],
)
def test_substrate_packets_no_agent_sends_are_refused_and_counted(
    lab: Lab, sender: str, target: str, cases: list[SubstrateCase]
) -> None:
    """Host s writes onto the substrate, to r's node `target`, from where `sender` really lives:
    what no agent would send. Nothing reaches `target`; r counts each under its reason."""
    wait_reachable(lab, sender, lab.nodes[target].ip)
    src, dst = where(lab, sender), where(lab, target)
    ethernet = Ether(src=mac_of(lab, "s"), dst=mac_of(lab, "r"), type=0x86DD)
    forged = {name: marker() for name, _, _ in cases}
    packets = [make(src, dst, forged[name]) for name, make, _ in cases]
    genuine = marker()
    if target == "a":
        packets.append(raw(IPv6(src=src, dst=dst) / _udp(genuine)))
    else:
        packets.append(raw(IPv6(src=src, dst=dst, nh=4) / Raw(_inner(genuine))))
    before = lab.metrics("r")
    with sniffing(lab.ns(target)) as seen:
        send_frames(lab.host_ns("s"), "sub0", [ethernet / Raw(p) for p in packets])
        # The genuine one, sent last, arrives: a forged one delivered would be there before it.
        eventually(lambda: carrying(seen(), genuine) == 1, f"the genuine packet reaching {target}")
        expect_drops(lab, "r", before, _counted(cases))
        assert {name: carrying(seen(), m) for name, m in forged.items()} == dict.fromkeys(forged, 0)


def test_substrate_packets_shorter_than_an_ipv6_header_are_counted(lab: Lab) -> None:
    """Cut inside the fixed header, but past the /64 of the destination (the agent's socket
    filter takes only what is for its /64: a frame too short to say so is not for it)."""
    ethernet = Ether(src=mac_of(lab, "s"), dst=mac_of(lab, "r"), type=0x86DD)
    whole = raw(IPv6(src=where(lab, "g"), dst=where(lab, "a")) / _udp(marker()))
    before = lab.metrics("r")
    send_frames(lab.host_ns("s"), "sub0", [ethernet / Raw(whole[:n]) for n in (32, 36, 39)])
    expect_drops(lab, "r", before, {drop_key("ipv6_truncated"): 3})


NodeCase = tuple[str, Callable[[bytes], bytes], str]
NODE_CASES: list[NodeCase] = [
    ("version-1", lambda p: _ipv4(p, 0, b"\x15"), "ipv4_bad_version"),
    ("ihl-4", lambda p: _ipv4(p, 0, b"\x44", checksum=False), "ipv4_bad_header_length"),
    (
        "total-past-the-frame",
        lambda p: _ipv4(p, 2, struct.pack("!H", len(p) + 20)),
        "ipv4_truncated",
    ),
    (
        "total-short-of-the-frame",
        lambda p: _ipv4(p, 2, struct.pack("!H", len(p) - 8)),
        "ipv4_bad_total_length",
    ),
    ("bad-checksum", lambda p: _ipv4(p, 10, b"\x12\x34", checksum=False), "ipv4_bad_checksum"),
    ("esp", lambda p: _ipv4(p, 9, b"\x32"), "protocol_not_carried"),
    ("udp-length", lambda p: _ipv4(p, 24, struct.pack("!H", 12)), "udp_bad_length"),
]


def test_malformed_ipv4_to_a_node_next_door_is_refused_and_counted(lab: Lab) -> None:
    """Node a writes malformed IPv4 to b, on the same host: none reaches b (the same frames
    toward the substrate are refused too, by the same check); r counts each."""
    a, b = lab.nodes["a"], lab.nodes["b"]
    wait_reachable(lab, "a", b.ip)
    forged = {name: marker() for name, _, _ in NODE_CASES}

    def datagram(data: bytes) -> bytes:
        return raw(IP(src=a.ip, dst=b.ip) / _udp(data))

    frames = [
        Ether(src=a.mac, dst=b.mac, type=0x0800) / Raw(make(datagram(forged[name])))
        for name, make, _ in NODE_CASES
    ]
    genuine = marker()
    frames.append(Ether(src=a.mac, dst=b.mac, type=0x0800) / Raw(datagram(genuine)))
    before = lab.metrics("r")
    with sniffing(lab.ns("b")) as seen:
        send_frames(lab.ns("a"), "eth0", frames)
        eventually(lambda: carrying(seen(), genuine) == 1, "a's genuine datagram reaching b")
        counts: dict[str, int] = {}
        for _, _, reason in NODE_CASES:
            counts[drop_key(reason)] = counts.get(drop_key(reason), 0) + 1
        expect_drops(lab, "r", before, counts)
        assert {name: carrying(seen(), m) for name, m in forged.items()} == dict.fromkeys(forged, 0)


def test_agent_status_shows_the_datapath_its_programs_and_the_kernels_drops(
    lab: Lab, datapath: str
) -> None:
    """`onm agent status --metrics`: on ebpf r's programs (one per port, one on the substrate),
    its maps, and what the kernel handed to the core (a's ARP); on userspace the datapath alone."""
    wait_reachable(lab, "a", lab.nodes["g"].ip)
    agent = lab.process("agent", "r")
    address = f"127.0.0.1:{metrics_port(agent)}"
    shown = json.loads(onm("agent", "status", "--metrics", address, "--json").stdout)
    assert shown["datapath"] == datapath
    if datapath == "userspace":
        assert shown["programs"] == [] and shown["map_entries"] == {}
        return
    ports = {lab.nodes[n].interface for n in ("a", "b", "x1")}
    attached = {(p["program"], p["interface"]) for p in shown["programs"]}
    assert attached == {("onm_node_ingress", i) for i in ports} | {
        ("onm_substrate_ingress", "sub0")
    }
    assert shown["map_entries"]["onm_ports"] == 3
    assert shown["slow_path"].get("arp", 0) >= 1, shown
    text = onm("agent", "status", "--metrics", address).stdout
    assert text.startswith("datapath: ebpf\nprograms: onm_node_ingress (id "), text
