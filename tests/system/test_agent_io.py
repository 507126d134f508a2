"""The agent's I/O adapters against the real kernel: namespaces, packet sockets, raw IPv6.

The test process stays in the root namespace, as the agent does; every socket it uses lives in
a namespace made for the test (`onmt<pid>...`) and reached through `run_in_netns`. Namespaces
and interfaces are deleted by exact name the moment they exist (pytest finalizers).
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import itertools
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from onm.agent.io.errors import InterfaceNotFoundError, NamespaceError, OffloadError
from onm.agent.io.interfaces import interface_info, list_interfaces
from onm.agent.io.neighbours import NextHops, next_hop_mac
from onm.agent.io.netns import run_in_netns, run_in_netns_value
from onm.agent.io.offload import get_offloads, set_offloads
from onm.agent.io.packet_socket import (
    ETH_P_ALL,
    BpfInsn,
    attach_filter,
    bound_interface,
    ethertype_filter,
    ipv6_dst_prefix_filter,
    open_packet_socket,
    recv_batch,
    recv_frame,
    send,
    send_parts,
)
from onm.agent.io.raw6 import IPV6_HDRINCL, open_raw6_sender, send_ipv6
from onm.packet import offload
from support.segments import nic_cut, segment_valid

TAG = f"onmt{os.getpid()}"
"""Prefix of every namespace and interface these tests create (interface names <= 15 bytes)."""

ETH_P_TEST = 0x88B5
"""IEEE 802 "local experimental" ethertype 1: nothing else on the link uses it."""

MAC_A = "02:00:5e:10:00:0a"
MAC_B = "02:00:5e:10:00:0b"

_serial = itertools.count()


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _own_children() -> set[int]:
    """Pids of this process's live children (any thread's)."""
    pids: set[int] = set()
    for children in Path("/proc/self/task").glob("*/children"):
        pids.update(int(pid) for pid in children.read_text().split())
    return pids


@dataclass(frozen=True)
class Link:
    """Two namespaces joined by a veth pair; both ends up, IPv6 addresses not yet set."""

    ns_a: str
    ns_b: str
    if_a: str
    if_b: str


@pytest.fixture
def make_netns(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A factory of empty namespaces, each deleted (by name) when the test ends."""

    def make() -> str:
        name = f"{TAG}n{next(_serial)}"
        ip("netns", "add", name)
        request.addfinalizer(
            lambda: subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        )
        ip("-n", name, "link", "set", "lo", "up")
        return name

    return make


@pytest.fixture
def link(request: pytest.FixtureRequest, make_netns: Callable[[], str]) -> Link:
    ns_a, ns_b = make_netns(), make_netns()
    serial = next(_serial)
    if_a, if_b = f"{TAG}a{serial}", f"{TAG}b{serial}"
    ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
    request.addfinalizer(
        lambda: subprocess.run(
            ["ip", "-n", ns_a, "link", "del", if_a], capture_output=True, check=False
        )
    )
    ip("-n", ns_a, "link", "set", if_a, "address", MAC_A, "up")
    ip("-n", ns_b, "link", "set", if_b, "address", MAC_B, "up")
    return Link(ns_a, ns_b, if_a, if_b)


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Sockets to close when the test ends: tests append what they open."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def packet_socket_in(
    netns: str,
    ifname: str,
    opened: list[socket.socket],
    *,
    ethertype: int = ETH_P_ALL,
    ignore_outgoing: bool = True,
    bpf: list[BpfInsn] | None = None,
) -> socket.socket:
    """A packet socket opened inside `netns`, closed when the test ends."""
    [sock] = run_in_netns(
        netns,
        lambda: [open_packet_socket(ifname, ethertype, ignore_outgoing=ignore_outgoing, bpf=bpf)],
    )
    opened.append(sock)
    return sock


def receive_until(
    sock: socket.socket, wanted: Callable[[bytes], bool], timeout: float = 3.0
) -> list[bytes]:
    """Every frame received until one is `wanted` (then returned last), or until `timeout`."""
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        select.select([sock], [], [], 0.1)
        for frame in recv_batch(sock):
            frames.append(frame)
            if wanted(frame):
                return frames
    return frames


def test_socket_made_inside_the_namespace_while_we_stay_home(
    link: Link, sockets: list[socket.socket]
) -> None:
    home = os.stat("/proc/self/ns/net").st_ino
    children = _own_children()
    sock = packet_socket_in(link.ns_a, link.if_a, sockets)
    assert os.stat("/proc/self/ns/net").st_ino == home
    assert _own_children() == children  # the helper child was reaped
    assert sock.family == socket.AF_PACKET
    assert sock.getblocking() is False
    # getsockname resolves the ifindex through the socket itself: the namespace's interface,
    # which does not exist here.
    assert sock.getsockname()[0] == link.if_a
    with pytest.raises(OSError):
        socket.if_nametoindex(link.if_a)


def test_value_is_computed_inside_the_namespace(make_netns: Callable[[], str]) -> None:
    netns = make_netns()
    inside = run_in_netns_value(netns, lambda: os.stat("/proc/self/ns/net").st_ino)
    assert inside == os.stat(f"/run/netns/{netns}").st_ino
    assert inside != os.stat("/proc/self/ns/net").st_ino
    assert run_in_netns_value(None, lambda: 42) == 42


def test_frame_crosses_the_veth(link: Link, sockets: list[socket.socket]) -> None:
    receiver = packet_socket_in(link.ns_a, link.if_a, sockets, ethertype=ETH_P_TEST)
    sender = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=ETH_P_TEST)
    frame = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"onm frame crossing"))
    assert send(sender, frame)
    assert receive_until(receiver, lambda got: got == frame)[-1] == frame


def test_recv_batch_drains_in_one_call_and_stops_at_max(
    link: Link, sockets: list[socket.socket]
) -> None:
    receiver = packet_socket_in(link.ns_a, link.if_a, sockets, ethertype=ETH_P_TEST)
    sender = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=ETH_P_TEST)
    frames = [
        bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"batch %02d" % n + b"." * 50))
        for n in range(10)
    ]
    for frame in frames:
        assert send(sender, frame)
    select.select([receiver], [], [], 3.0)
    time.sleep(0.2)  # all ten are queued by now
    buffer = bytearray(2048)
    first = recv_batch(receiver, 4, 2048, buffer=buffer)
    rest = recv_batch(receiver, 64, 2048, buffer=buffer)
    assert first + rest == frames
    assert len(first) == 4
    assert recv_batch(receiver) == []


def test_oversized_frames_are_counted_drops(link: Link, sockets: list[socket.socket]) -> None:
    receiver = packet_socket_in(link.ns_a, link.if_a, sockets, ethertype=ETH_P_TEST)
    sender = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=ETH_P_TEST)
    drops: collections.Counter[str] = collections.Counter()
    jumbo = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"j" * 3000))
    assert send(sender, jumbo, drops=drops) is False
    assert drops == {"EMSGSIZE": 1}
    big = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"b" * 1000))
    marker = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"small one" * 6))
    assert send(sender, big)
    assert send(sender, marker)
    deadline = time.monotonic() + 3
    got: list[bytes] = []
    while marker not in got and time.monotonic() < deadline:
        select.select([receiver], [], [], 0.1)
        got += recv_batch(receiver, bufsize=500, drops=drops)
    assert got == [marker]
    assert drops["truncated"] == 1


def test_an_interface_down_keeps_its_socket_one_deleted_ends_it(
    link: Link, sockets: list[socket.socket]
) -> None:
    # What the datapath tells apart (issue #7, defect 1): down, the socket stays bound by name,
    # reports ENETDOWN once and drops what it is given; deleted, it is bound to nothing,
    # reports ENETDOWN once, and every send fails with ENXIO: the caller must close it.
    sock = packet_socket_in(link.ns_a, link.if_a, sockets)
    view = memoryview(bytearray(2048))
    frame = bytes(Ether(src=MAC_A, dst=MAC_B, type=ETH_P_TEST) / Raw(b"x" * 46))
    ip("-n", link.ns_a, "link", "set", link.if_a, "down")
    with pytest.raises(OSError) as down:
        recv_frame(sock, view)
    assert down.value.errno == errno.ENETDOWN
    assert bound_interface(sock) == link.if_a
    assert recv_frame(sock, view) is None  # reported once
    drops: collections.Counter[str] = collections.Counter()
    assert send(sock, frame, drops=drops) is False and drops == {"ENETDOWN": 1}

    ip("-n", link.ns_a, "link", "set", link.if_a, "up")
    ip("-n", link.ns_a, "link", "del", link.if_a)
    with pytest.raises(OSError) as deleted:
        recv_frame(sock, view)
    assert deleted.value.errno == errno.ENETDOWN
    assert bound_interface(sock) is None
    with pytest.raises(OSError) as gone:
        send_parts(sock, (frame,))
    assert gone.value.errno == errno.ENXIO
    assert recv_batch(sock, drops=drops) == []  # recv_batch still counts and ends, as before
    sock.close()
    with pytest.raises(OSError) as closed:
        recv_frame(sock, view)
    assert closed.value.errno == errno.EBADF


def test_ignore_outgoing(link: Link, sockets: list[socket.socket]) -> None:
    ignoring = packet_socket_in(link.ns_a, link.if_a, sockets)  # ETH_P_ALL, the default
    seeing = packet_socket_in(link.ns_a, link.if_a, sockets, ignore_outgoing=False)
    peer = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=ETH_P_TEST)
    outgoing = bytes(Ether(src=MAC_A, dst=MAC_B, type=ETH_P_TEST) / Raw(b"going out" * 8))
    incoming = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"coming in" * 8))
    assert send(ignoring, outgoing)
    assert receive_until(peer, lambda got: got == outgoing)[-1] == outgoing
    assert outgoing in receive_until(seeing, lambda got: got == outgoing)
    # The outgoing copy is handed to taps as it is sent, before `incoming` even exists: if the
    # ignoring socket had been given it, it would come before `incoming`.
    assert send(peer, incoming)
    frames = receive_until(ignoring, lambda got: got == incoming)
    assert frames[-1] == incoming
    assert outgoing not in frames


def _ipv6_frame(destination: str, text: bytes) -> bytes:
    return bytes(
        Ether(src=MAC_B, dst=MAC_A)
        / IPv6(src="fd00:99::1", dst=destination)
        / UDP(sport=4000, dport=4001)
        / Raw(text)
    )


def test_ipv6_prefix_filter_in_the_kernel(link: Link, sockets: list[socket.socket]) -> None:
    program = ipv6_dst_prefix_filter(bytes.fromhex("fd000000abcd0001"))
    filtered = packet_socket_in(link.ns_a, link.if_a, sockets, bpf=program)
    peer = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=ETH_P_TEST)
    outside = _ipv6_frame("fd00:0:abcd:2::5", b"not for our /64")
    other_type = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"x" * 60))
    inside = _ipv6_frame("fd00:0:abcd:1:a00:1:c0a8:105", b"for our /64")
    for frame in (outside, other_type, inside):
        assert send(peer, frame)
    # Frames keep their order on a veth: had the filter passed the first two, they would be here.
    assert receive_until(filtered, lambda got: got == inside) == [inside]


def test_filter_attached_to_an_open_socket(link: Link, sockets: list[socket.socket]) -> None:
    receiver = packet_socket_in(link.ns_a, link.if_a, sockets)
    attach_filter(receiver, ethertype_filter(ETH_P_TEST))
    recv_batch(receiver)  # whatever arrived before the filter
    peer = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=ETH_P_TEST)
    ipv6 = _ipv6_frame("fd00::1", b"an IPv6 frame")
    wanted = bytes(Ether(src=MAC_B, dst=MAC_A, type=ETH_P_TEST) / Raw(b"the test type" * 5))
    assert send(peer, ipv6)
    assert send(peer, wanted)
    assert receive_until(receiver, lambda got: got == wanted) == [wanted]


def _eventually(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_interface_info_reads_the_namespace_not_ours(link: Link) -> None:
    ip("-n", link.ns_a, "link", "set", link.if_a, "mtu", "1520")
    ip("-n", link.ns_b, "link", "set", link.if_b, "down")
    info = interface_info(link.if_a, netns=link.ns_a)
    assert info.name == link.if_a
    assert info.mac == bytes.fromhex(MAC_A.replace(":", ""))
    assert info.mtu == 1520
    assert info.up is True
    assert info.index == run_in_netns_value(link.ns_a, lambda: socket.if_nametoindex(link.if_a))
    peer = interface_info(link.if_b, netns=link.ns_b)
    assert (peer.up, peer.running, peer.mac) == (
        False,
        False,
        bytes.fromhex(MAC_B.replace(":", "")),
    )
    with pytest.raises(InterfaceNotFoundError):
        interface_info(link.if_a)  # not in the root namespace
    # IFF_RUNNING follows the operational state, which linkwatch updates a little later
    # (up to a second): a veth loses its carrier when its peer goes down, and gets it back.
    _eventually(
        lambda: not interface_info(link.if_a, netns=link.ns_a).running, "carrier never went"
    )
    ip("-n", link.ns_b, "link", "set", link.if_b, "up")
    _eventually(lambda: interface_info(link.if_a, netns=link.ns_a).running, "carrier never came")


def test_list_interfaces_of_the_namespace(link: Link) -> None:
    listed = list_interfaces(netns=link.ns_a)
    assert [info.name for info in listed] == ["lo", link.if_a]
    assert listed[0].mac == bytes(6) and listed[0].up
    assert listed[1].mac == bytes.fromhex(MAC_A.replace(":", ""))
    here = {info.name for info in list_interfaces()}
    assert link.if_a not in here


def test_raw6_sends_a_foreign_source_unchanged(link: Link, sockets: list[socket.socket]) -> None:
    # Host A owns fd00:a::/64 but has only ::1 configured; B is its next hop toward fd00:b::/64.
    ip("-n", link.ns_a, "addr", "add", "fd00:a::1/64", "dev", link.if_a, "nodad")
    ip("-n", link.ns_b, "addr", "add", "fd00:a::2/64", "dev", link.if_b, "nodad")
    ip("-n", link.ns_a, "route", "add", "fd00:b::/64", "via", "fd00:a::2")
    nonlocal_bind = run_in_netns_value(
        link.ns_a, lambda: Path("/proc/sys/net/ipv6/ip_nonlocal_bind").read_text().strip()
    )
    assert nonlocal_bind == "0"  # no sysctl help: the raw socket needs none
    [sender] = run_in_netns(link.ns_a, lambda: [open_raw6_sender()])
    sockets.append(sender)
    assert sender.getsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL) == 1
    receiver = packet_socket_in(link.ns_b, link.if_b, sockets, ethertype=0x86DD)
    packet = bytes(
        IPv6(src="fd00:a::1:a00:7", dst="fd00:b::1:a00:9", hlim=7, fl=0x12345, tc=0x28)
        / UDP(sport=5555, dport=6666)
        / Raw(b"re-headered payload")
    )
    assert send_ipv6(sender, packet)
    frames = receive_until(receiver, lambda got: got[14:] == packet)
    assert frames, "nothing arrived"
    arrived = frames[-1]
    assert arrived[14:] == packet  # hop limit, flow label, source: all exactly as built
    assert arrived[6:12] == bytes.fromhex(MAC_A.replace(":", ""))  # the kernel found the
    assert arrived[0:6] == bytes.fromhex(MAC_B.replace(":", ""))  # next hop's MAC by ndisc


def test_raw6_unroutable_is_a_counted_drop(
    make_netns: Callable[[], str], sockets: list[socket.socket]
) -> None:
    [sender] = run_in_netns(make_netns(), lambda: [open_raw6_sender()])
    sockets.append(sender)
    drops: collections.Counter[str] = collections.Counter()
    packet = bytes(IPv6(src="fd00:a::7", dst="2001:db8::9") / UDP() / Raw(b"nowhere"))
    assert send_ipv6(sender, packet, drops=drops) is False
    assert drops == {"ENETUNREACH": 1}


def test_missing_namespace_is_named() -> None:
    missing = f"{TAG}gone"
    for call in (
        lambda: run_in_netns(missing, list),
        lambda: run_in_netns_value(missing, lambda: 1),
        lambda: interface_info("lo", netns=missing),
        lambda: list_interfaces(netns=missing),
    ):
        with pytest.raises(NamespaceError, match=f"network namespace '{missing}': does not exist"):
            call()


def test_a_file_that_is_not_a_namespace(tmp_path: Path) -> None:
    not_a_namespace = tmp_path / "plain-file"
    not_a_namespace.write_text("")
    with pytest.raises(NamespaceError, match=r"OSError: .*setns\(CLONE_NEWNET\) failed"):
        run_in_netns_value(str(not_a_namespace), lambda: 1)


def test_missing_interface_is_named(make_netns: Callable[[], str]) -> None:
    netns = make_netns()
    with pytest.raises(InterfaceNotFoundError, match=f"no interface 'nosuch0' in .*'{netns}'"):
        interface_info("nosuch0", netns=netns)
    with pytest.raises(NamespaceError, match="InterfaceNotFoundError: no interface 'nosuch0'") as e:
        run_in_netns(netns, lambda: [open_packet_socket("nosuch0")])
    assert isinstance(e.value.__cause__, InterfaceNotFoundError)
    assert e.value.remote_type == "InterfaceNotFoundError"
    with pytest.raises(InterfaceNotFoundError):
        open_packet_socket(f"{TAG}none")


def test_child_failures_come_back_as_namespace_errors(make_netns: Callable[[], str]) -> None:
    netns = make_netns()
    children = _own_children()

    def broken() -> list[socket.socket]:
        raise RuntimeError("opener broke")

    with pytest.raises(NamespaceError, match="RuntimeError: opener broke"):
        run_in_netns(netns, broken)
    with pytest.raises(NamespaceError, match="TypeError: the opener must return a list"):
        run_in_netns(netns, lambda: ["not a socket"])  # type: ignore[list-item]
    with pytest.raises(NamespaceError, match=r"did not answer within 0\.3s"):
        run_in_netns_value(netns, lambda: time.sleep(30), timeout=0.3)
    assert _own_children() == children  # killed and reaped, every one


def test_many_sockets_come_back_in_order(make_netns: Callable[[], str]) -> None:
    netns = make_netns()

    def opener() -> list[socket.socket]:
        made = []
        for port in range(3):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.bind(("::1", 40000 + port))
            made.append(sock)
        return made

    got = run_in_netns(netns, opener)
    try:
        assert [sock.getsockname()[1] for sock in got] == [40000, 40001, 40002]
        assert all(sock.getblocking() for sock in got)
    finally:
        for sock in got:
            sock.close()


def test_offloads_read_and_changed_inside_the_namespace(link: Link) -> None:
    before = get_offloads(link.if_a, netns=link.ns_a)
    assert "generic-receive-offload" in before
    after = set_offloads(link.if_a, netns=link.ns_a, gro=not before["generic-receive-offload"])
    assert after["generic-receive-offload"] is not before["generic-receive-offload"]
    assert get_offloads(link.if_a, netns=link.ns_a) == after
    with pytest.raises(OffloadError, match="nosuch0"):
        set_offloads("nosuch0", netns=link.ns_a, gro=True)


# --- TCP super-frames through packet sockets, and the next hop's MAC ------------------------------


def _super_packet() -> tuple[bytes, bytes]:
    """IPv6 + TCP headers (checksum field partial) and a 20 000-octet payload: one super-packet."""
    payload = bytes(range(250)) * 80
    headers = bytes(
        IPv6(src="fd00:a::1:a00:7", dst="fd00:b::1:a00:9", plen=0)
        / TCP(sport=40000, dport=5201, seq=1, flags="A", options=[("NOP", None)] * 12)
    )
    made = offload.super_headers(headers, len(payload))
    assert isinstance(made, bytes)
    return made, payload


def _next_frame_over(receiver: socket.socket, view: memoryview, size: int) -> int | None:
    """The length of the first frame longer than `size` bytes received within 3 s, skipping
    what the kernel sends on its own meanwhile (MLD reports, router solicitations)."""
    deadline = time.monotonic() + 3.0
    while (left := deadline - time.monotonic()) > 0:
        select.select([receiver], [], [], left)
        length = recv_frame(receiver, view)
        if length is not None and length > size:
            return length
    return None


def test_super_frame_crosses_the_veth_whole(link: Link, sockets: list[socket.socket]) -> None:
    # What the datapath relies on: a GSO frame given to a packet socket with a virtio-net header
    # arrives whole at a packet socket with one on the other side, announced as TCPV6 with its
    # segment size, and cut by a device it makes valid segments.
    [sender] = run_in_netns(link.ns_a, lambda: [open_packet_socket(link.if_a, 0, vnet_hdr=True)])
    sockets.append(sender)
    [receiver] = run_in_netns(
        link.ns_b, lambda: [open_packet_socket(link.if_b, 0x86DD, vnet_hdr=True)]
    )
    sockets.append(receiver)
    packet, payload = _super_packet()
    gso = offload.TcpGso(1400)
    header = offload.tcp_gso_header(packet, gso)
    assert isinstance(header, bytes)
    ethernet = bytes(Ether(src=MAC_A, dst=MAC_B, type=0x86DD))
    assert send_parts(sender, (header, ethernet, packet, memoryview(payload)))
    view = memoryview(bytearray(70000))
    length = _next_frame_over(receiver, view, 1000)
    assert length == offload.LENGTH + 14 + len(packet) + len(payload)
    assert offload.tcp_gso(view[:length]) == gso
    whole = bytes(view[offload.LENGTH + 14 : length])
    assert whole == packet + payload
    segments = nic_cut(whole, gso.size)
    assert len(segments) == 15 and all(segment_valid(s) for s in segments)


def test_next_hop_mac_comes_from_the_namespace(link: Link, sockets: list[socket.socket]) -> None:
    ip("-n", link.ns_a, "addr", "add", "fd00:a::1/64", "dev", link.if_a, "nodad")
    ip("-n", link.ns_b, "addr", "add", "fd00:a::2/64", "dev", link.if_b, "nodad")
    ip("-n", link.ns_a, "route", "add", "fd00:b::/64", "via", "fd00:a::2")
    ip("-n", link.ns_a, "route", "add", "blackhole", "fd00:c::/64")
    b = ipaddress.IPv6Address("fd00:b::9").packed
    assert next_hop_mac(b, link.if_a, link.ns_a) is None  # no neighbour entry yet
    subprocess.run(
        ["ip", "netns", "exec", link.ns_a, "ping", "-6", "-c1", "-W2", "fd00:a::2"],
        capture_output=True,
        check=False,
    )
    mac_b = bytes.fromhex(MAC_B.replace(":", ""))
    assert next_hop_mac(b, link.if_a, link.ns_a) == mac_b
    assert next_hop_mac(b, "eth9", link.ns_a) is None  # routed out of another interface
    assert next_hop_mac(ipaddress.IPv6Address("fd00:c::1").packed, link.if_a, link.ns_a) is None
    # In the background: the first ask answers nothing and looks it up; soon it is there.
    hops = NextHops(link.if_a, link.ns_a, bytes.fromhex(MAC_A.replace(":", "")))
    try:
        assert hops.ethernet_to(b) is None
        deadline = time.monotonic() + 5
        while hops.ethernet_to(b) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hops.ethernet_to(b) == mac_b + bytes.fromhex(MAC_A.replace(":", "")) + b"\x86\xdd"
    finally:
        hops.close()
