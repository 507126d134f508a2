"""The libbpf adapter against the kernel: the agent's checks in the programs, tc hooks, pins.

The checks are onm.agent.forwarding's and onm.agent.receive's, with the same drop reasons; what
the programs leave to the userspace core is handed over untouched and counted. tc hooks are
created in a namespace of this test's own (bp<pid>), by a child process that enters it.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.libbpf import (
    BPFFS,
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    BpfError,
    BpfObject,
    pinned_fd,
)
from onm.packet.drop import DropReason
from support import bpf_harness
from support.bpf_harness import (
    AGENT,
    BUILD,
    HOST_A,
    HOST_B,
    NODE,
    PEER,
    PORT_MAC,
    ROOT,
    ROUTER_MAC,
    SENDER_MAC,
    TARGET_MAC,
    Loaded,
    ethernet,
    fill_node,
    fill_substrate,
    substrate,
    v4,
)

PREFIX = f"bp{os.getpid()}"
SlowPath = layout.SlowPath

node_fixture = bpf_harness.node_fixture  # the shared fixtures `node` and `sub`
sub_fixture = bpf_harness.sub_fixture


LOCAL6 = substrate(HOST_A, v4(NODE))
REMOTE6 = substrate(HOST_B, v4(PEER))
DATAGRAM = bytes(IP(src=NODE, dst=PEER) / UDP() / b"check")


def _node(node: Loaded, frame: bytes, **flags: int) -> tuple[int, object]:
    fill_node(node, AGENT, v4(NODE), LOCAL6, v4(PEER), REMOTE6, **flags)
    out = node.run(frame)
    return out.verdict, out.drop or out.slow


def test_node_ingress_checks(node: Loaded) -> None:
    good = ethernet(TARGET_MAC, PORT_MAC, 0x0800, DATAGRAM)
    assert _node(node, good) == (TC_ACT_REDIRECT, None)
    shot, ok = TC_ACT_SHOT, TC_ACT_OK
    spoofed_mac = ethernet(TARGET_MAC, SENDER_MAC, 0x0800, DATAGRAM)
    assert _node(node, spoofed_mac) == (shot, DropReason.SPOOFED_SOURCE_MAC)
    arp = ethernet(b"\xff" * 6, PORT_MAC, 0x0806, bytes(ARP(psrc=NODE, pdst=PEER)))
    assert _node(node, arp) == (ok, SlowPath.ARP)
    ipv6 = ethernet(TARGET_MAC, PORT_MAC, 0x86DD, bytes(IPv6() / UDP()))
    assert _node(node, ipv6) == (shot, DropReason.ETHERTYPE_UNSUPPORTED)
    foreign = ethernet(TARGET_MAC, PORT_MAC, 0x0800, bytes(IP(src="10.0.0.9", dst=PEER) / UDP()))
    assert _node(node, foreign) == (ok, SlowPath.FOREIGN_SOURCE)
    routed = ethernet(ROUTER_MAC, PORT_MAC, 0x0800, DATAGRAM)
    assert _node(node, routed) == (ok, SlowPath.ROUTED)
    unknown = ethernet(TARGET_MAC, PORT_MAC, 0x0800, bytes(IP(src=NODE, dst="10.0.0.3") / UDP()))
    assert _node(node, unknown) == (ok, SlowPath.NO_MAPPING)
    other_mac = ethernet(SENDER_MAC, PORT_MAC, 0x0800, DATAGRAM)
    assert _node(node, other_mac) == (ok, SlowPath.MAC_MISMATCH)
    assert _node(node, good, mapping_flags=layout.MappingFlag.LOCAL) == (
        ok,
        SlowPath.LOCAL_TARGET,
    )
    sent = node.maps.member_sent().get(bpf_harness.LOOPBACK, 0)  # a member's port: counted
    assert _node(node, good, port_flags=layout.PortFlag.POOL_MEMBER) == (TC_ACT_REDIRECT, None)
    assert node.maps.member_sent()[bpf_harness.LOOPBACK] == sent + 1
    assert _node(node, good) == (TC_ACT_REDIRECT, None)
    assert node.maps.member_sent()[bpf_harness.LOOPBACK] == sent + 1
    assert _node(node, good, mapping_flags=layout.MappingFlag.POOL) == (ok, SlowPath.POOL)
    node.clear()  # no port: until the agent has written the tables, nothing is forwarded
    out = node.run(good)
    assert (out.verdict, out.drop) == (shot, DropReason.UNKNOWN_PORT)


def _sub(sub: Loaded, frame: bytes, source: bytes = REMOTE6, **kw: object) -> tuple[int, object]:
    fill_substrate(sub, AGENT, LOCAL6, v4(NODE), source, **kw)  # type: ignore[arg-type]
    out = sub.run(frame)
    return out.verdict, out.drop or out.slow


def _ipv6(src: bytes, dst: bytes) -> bytes:
    packet = IPv6(src=str(ipaddress.IPv6Address(src)), dst=str(ipaddress.IPv6Address(dst)))
    return ethernet(PORT_MAC, SENDER_MAC, 0x86DD, bytes(packet / UDP() / b"check"))


def test_substrate_ingress_checks(sub: Loaded) -> None:
    good = _ipv6(REMOTE6, LOCAL6)
    assert _sub(sub, good) == (TC_ACT_REDIRECT, None)
    shot, ok = TC_ACT_SHOT, TC_ACT_OK
    ipv4 = ethernet(PORT_MAC, SENDER_MAC, 0x0800, DATAGRAM)
    assert _sub(sub, ipv4) == (ok, SlowPath.NOT_IPV6)
    elsewhere = _ipv6(REMOTE6, substrate(HOST_A, v4("10.0.0.77")))
    assert _sub(sub, elsewhere) == (ok, SlowPath.NOT_LOCAL)
    assert _sub(sub, good, vni=8) == (shot, DropReason.NETWORK_MISMATCH)
    assert _sub(sub, good, allowed=False) == (shot, DropReason.SPOOFED_SUBSTRATE_SOURCE)
    # The right (network, IPv4) from the wrong host is spoofed too.
    wrong_host = _ipv6(substrate(HOST_B + 0x10000, v4(PEER)), LOCAL6)
    assert _sub(sub, wrong_host) == (shot, DropReason.SPOOFED_SUBSTRATE_SOURCE)
    assert _sub(sub, good, allowed=False, gateway=True) == (ok, SlowPath.FROM_GATEWAY)
    delivered = sub.maps.pool_deliveries().get(LOCAL6, 0)  # a pool address: counted
    assert _sub(sub, good, local_flags=layout.PortFlag.POOL_ADDRESS) == (TC_ACT_REDIRECT, None)
    assert sub.maps.pool_deliveries()[LOCAL6] == delivered + 1
    assert _sub(sub, good) == (TC_ACT_REDIRECT, None)  # a node's own address: not counted
    assert sub.maps.pool_deliveries()[LOCAL6] == delivered + 1
    sub.maps.forget_deliveries(LOCAL6)
    assert LOCAL6 not in sub.maps.pool_deliveries()


def test_identification_generators_spread_over_cpus(sub: Loaded) -> None:
    sub.maps.spread_identification(0xFFF0)
    seeds = sub.maps.identifications()
    assert seeds[0] == 0xFFF0 and len(set(seeds)) == len(seeds)
    sub.maps.set_identification(7)
    assert set(sub.maps.identifications()) == {7}


def test_errors_name_what_failed(tmp_path: Path) -> None:
    with pytest.raises(BpfError) as missing:
        BpfObject(tmp_path / "nothing.o")
    assert "nothing.o" in str(missing.value) and missing.value.errno == errno.ENOENT
    with BpfObject(BUILD / "node_ingress.o") as obj:
        with pytest.raises(BpfError, match="program onm_nope of"):
            obj.program("onm_nope")
        with pytest.raises(BpfError, match="map onm_nope of"):
            obj.map("onm_nope")
        ports = obj.map("onm_ports")
        with pytest.raises(BpfError, match="map onm_ports: use a key of 8 octets"):
            ports.delete(layout.MappingKey())
        assert ports.delete(layout.PortKey(12345)) is False


def test_pin_and_unpin() -> None:
    base = BPFFS / PREFIX
    try:
        with BpfObject(BUILD / "node_ingress.o") as obj:
            drops = obj.map("onm_drops")
            program = obj.program("onm_node_ingress")
            drops.pin(base / "onm_drops")
            program.pin(base / "onm_node_ingress")
            for path in (base / "onm_drops", base / "onm_node_ingress"):
                fd = pinned_fd(path)
                os.close(fd)
            drops.unpin(base / "onm_drops")
            program.unpin(base / "onm_node_ingress")
            assert not (base / "onm_drops").exists()
            with pytest.raises(BpfError, match="pin"):
                pinned_fd(base / "onm_drops")
    finally:
        for leftover in ("onm_drops", "onm_node_ingress"):
            (base / leftover).unlink(missing_ok=True)
        if base.exists():
            base.rmdir()


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from onm.agent.datapath.ebpf.libbpf import BpfObject, TcAttachPoint, TcHook
    ifindex = int(sys.argv[1])
    hook = TcHook(ifindex, TcAttachPoint.INGRESS)
    hook.create()
    hook.create()  # idempotent
    with BpfObject(Path(sys.argv[2])) as first, BpfObject(Path(sys.argv[3])) as second:
        a = hook.attach(first.program("onm_node_ingress"))
        b = hook.attach(second.program("onm_substrate_ingress"))  # replaced in place
        print(a, b, flush=True)
        sys.stdin.readline()  # the parent looks at the filter now
        hook.detach()
    hook.destroy()
    """
)


def _in_netns(namespace: str, *command: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command], check=True, capture_output=True, text=True
    ).stdout


def test_tc_attach_replace_detach() -> None:
    namespace = PREFIX
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        _in_netns(
            namespace, "ip", "link", "add", f"{PREFIX}a", "type", "veth", "peer", f"{PREFIX}b"
        )
        ifindex = int(_in_netns(namespace, "cat", f"/sys/class/net/{PREFIX}a/ifindex"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                sys.executable,
                "-c",
                CHILD,
                str(ifindex),
                str(BUILD / "node_ingress.o"),
                str(BUILD / "substrate_ingress.o"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            first, second = map(int, child.stdout.readline().split())
            assert first != second
            shown = _in_netns(namespace, "tc", "filter", "show", "dev", f"{PREFIX}a", "ingress")
            assert f"id {second}" in shown and "onm_substrate_i" in shown  # names: 15 chars
            assert f"id {first} " not in shown  # replaced, not added beside
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.wait(timeout=30) == 0, child.stderr.read() if child.stderr else ""
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        shown = _in_netns(namespace, "tc", "qdisc", "show", "dev", f"{PREFIX}a")
        assert "clsact" not in shown
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def test_a_layout_the_c_disagrees_with_does_not_compile(tmp_path: Path) -> None:
    """The generated static asserts bite: a header whose size for one struct is off fails."""
    tree = tmp_path / "bpf"
    shutil.copytree(ROOT / "bpf", tree)
    header = tree / "include" / "generated" / "defs.h"
    good = header.read_text()
    size = ctypes.sizeof(layout.PortValue)
    assertion = f"sizeof(struct onm_port_value) == {size},"
    assert assertion in good
    header.write_text(good.replace(assertion, f"sizeof(struct onm_port_value) == {size + 4},"))
    built = subprocess.run(
        [
            "clang",
            "-O2",
            "-target",
            "bpf",
            f"-I/usr/include/{os.uname().machine}-linux-gnu",
            "-c",
            str(tree / "node_ingress.c"),
            "-o",
            str(tmp_path / "x.o"),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode != 0
    assert "onm_port_value: size differs from layout.PortValue" in built.stderr
