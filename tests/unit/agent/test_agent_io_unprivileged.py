"""onm.agent.io: what can be checked without root (validation, errors, send/receive helpers).

The send and receive helpers only need a datagram socket, so an AF_UNIX socketpair stands in
for a packet socket here; the real thing is in tests/system/test_agent_io.py.
"""

from __future__ import annotations

import collections
import pickle
import socket
from collections.abc import Iterator

import pytest

from onm.agent.io.errors import InterfaceNotFoundError, NamespaceError
from onm.agent.io.interfaces import InterfaceInfo, check_ifname
from onm.agent.io.netns import netns_path, run_in_netns, run_in_netns_value
from onm.agent.io.packet_socket import recv_batch, send
from onm.agent.io.raw6 import send_ipv6
from onm.errors import InvalidInputError, NotFoundError, OnmError
from onm.netlink.features import legacy_changes


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    left.setblocking(False)
    right.setblocking(False)
    yield left, right
    left.close()
    right.close()


def test_no_namespace_means_here() -> None:
    made: list[socket.socket] = []

    def opener() -> list[socket.socket]:
        made.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        return made

    try:
        assert run_in_netns(None, opener) is made
    finally:
        made[0].close()
    assert run_in_netns_value(None, lambda: "here") == "here"


def test_namespace_names() -> None:
    assert netns_path("lab-host-r") == "/run/netns/lab-host-r"
    assert netns_path("/proc/1/ns/net") == "/proc/1/ns/net"
    for bad in ("", ".", "..", "a/b", "a\0b"):
        with pytest.raises(NamespaceError, match="not a valid namespace name"):
            netns_path(bad)


def test_interface_names() -> None:
    assert check_ifname("onmt4194304ab15") == "onmt4194304ab15"
    for bad in ("", "x" * 16, "a/b", "a:0", "a b", ".", ".."):
        with pytest.raises(InvalidInputError, match="ifname"):
            check_ifname(bad)


def test_errors_are_on_the_tree_and_survive_pickling() -> None:
    missing = InterfaceNotFoundError("eth9", "host-r")
    assert isinstance(missing, NotFoundError)
    assert missing.http_status == 404
    assert str(missing) == "no interface 'eth9' in network namespace 'host-r'"
    assert str(InterfaceNotFoundError("eth9")) == "no interface 'eth9' in this network namespace"
    again = pickle.loads(pickle.dumps(missing))
    assert (type(again), again.ifname, again.netns) == (InterfaceNotFoundError, "eth9", "host-r")
    failed = NamespaceError("host-r", "OSError: boom", remote_type="OSError")
    assert isinstance(failed, OnmError)
    assert str(failed) == "network namespace 'host-r': OSError: boom"
    copy = pickle.loads(pickle.dumps(failed))
    assert (copy.netns, copy.reason, copy.remote_type) == ("host-r", "OSError: boom", "OSError")


def test_interface_info_pickles() -> None:
    info = InterfaceInfo("veth0", 7, bytes(6), 1500, up=True, running=False)
    assert pickle.loads(pickle.dumps(info)) == info


def test_recv_batch_drains_and_stops(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    for n in range(5):
        left.send(b"frame %d" % n)
    buffer = bytearray(100)
    assert recv_batch(right, 3, 100, buffer=buffer) == [b"frame 0", b"frame 1", b"frame 2"]
    assert recv_batch(right, 3, 100, buffer=buffer) == [b"frame 3", b"frame 4"]
    assert recv_batch(right) == []


def test_recv_batch_counts_truncated(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.send(b"x" * 200)
    left.send(b"short")
    drops: collections.Counter[str] = collections.Counter()
    assert recv_batch(right, 10, 64, drops=drops) == [b"short"]
    assert drops == {"truncated": 1}
    with pytest.raises(ValueError, match="fewer than bufsize"):
        recv_batch(right, 1, 64, buffer=bytearray(10))


def test_send_counts_a_full_queue(pair: tuple[socket.socket, socket.socket]) -> None:
    left, _right = pair
    drops: collections.Counter[str] = collections.Counter()
    sent = 0
    while send(left, b"y" * 1000, drops=drops):
        sent += 1
        assert sent < 100_000
    assert sent > 0
    assert drops == {"EAGAIN": 1}


def test_send_raises_what_is_not_a_drop(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.close()
    with pytest.raises(OSError):
        send(left, b"nobody listens")  # ECONNREFUSED: the socket is broken, not the frame


def test_send_ipv6_refuses_what_is_not_ipv6() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        for packet in (b"", b"\x60" * 39, b"\x45" + bytes(39)):
            with pytest.raises(InvalidInputError, match="packet"):
                send_ipv6(sock, packet)


def test_offload_keywords_name_ethtool_flags() -> None:
    changes = legacy_changes({"gro": True, "tso": False, "sg": None})
    assert changes == {"generic-receive-offload": True, "tcp-segmentation-offload": False}
    with pytest.raises(KeyError):
        legacy_changes({"warp_drive": True})
