"""onm.netlink against the real kernel: ensure operations are idempotent (the second call
changes nothing), failures name the object and namespace, neighbour events arrive.

The test process never enters a namespace; each namespace it makes (`nlt<pid>...`) is deleted
by exact name the moment it exists. What the kernel holds is checked with `ip -j`, the
independent witness.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from onm.netlink import helper
from onm.netlink import kernel as nl
from onm.netlink.errors import KernelError
from onm.netlink.features import Features
from onm.netlink.kernel import Kernel, Neighbour
from onm.netlink.neighbours import NeighbourEvents, RoutesChanged
from onm.netlink.vxlan import Vxlan

TAG = f"nlt{os.getpid()}"
_serial = itertools.count()


def ip_json(*args: str) -> Any:
    done = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout or "[]")


def _delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def make_netns(request: pytest.FixtureRequest) -> Callable[[], str]:
    def make() -> str:
        name = f"{TAG}n{next(_serial)}"
        request.addfinalizer(lambda: _delete(name))
        assert nl.ensure_netns(name) is True
        return name

    return make


@pytest.fixture
def kernels(request: pytest.FixtureRequest) -> Callable[[str], Kernel]:
    def make(netns: str) -> Kernel:
        made = Kernel(netns)
        request.addfinalizer(made.close)
        return made

    return make


def _state(netns: str) -> tuple[Any, ...]:
    """What the plan sets in the namespace: links, addresses, routes (not timers or
    operstate, which move by themselves)."""
    links = [
        (
            x["ifname"],
            x["mtu"],
            x["address"],
            x.get("master"),
            x.get("linkinfo", {}).get("info_kind"),
        )
        for x in ip_json("-n", netns, "-d", "link", "show")
    ]
    addresses = [
        (x["ifname"], a["local"], a["prefixlen"])
        for x in ip_json("-n", netns, "addr", "show")
        for a in x.get("addr_info", [])
    ]
    routes = [
        (r.get("type"), r["dst"], r.get("gateway"), r.get("dev"))
        for family in ("-4", "-6")
        for r in ip_json("-n", netns, family, "route")
    ]
    return links, sorted(addresses), sorted(routes, key=str)


def test_a_second_ensure_changes_nothing(
    make_netns: Callable[[], str], kernels: Callable[[str], Kernel]
) -> None:
    ns_a, ns_b = make_netns(), make_netns()
    assert nl.ensure_netns(ns_a) is False
    a, b = kernels(ns_a), kernels(ns_b)

    def ensure() -> None:
        nl.ensure_sysctl(ns_a, "net.ipv6.conf.all.forwarding", 1)
        a.set_link("lo")
        a.ensure_bridge("br0", 1400)
        a.ensure_veth("va", "vb", ns_b)
        a.set_link("va", mtu=1400, mac="02:00:5e:10:00:0a", master="br0")
        b.set_link("vb", mtu=1400)
        b.ensure_address("vb", ipaddress.ip_interface("10.9.0.2/24"))
        b.ensure_address("vb", ipaddress.ip_interface("fd00:9::2/64"))
        b.ensure_route(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_address("10.9.0.1"), "vb")
        b.ensure_route(ipaddress.ip_network("fd00:8::/64"), ipaddress.ip_address("fd00:9::1"), "vb")
        b.ensure_blackhole(ipaddress.ip_network("fd00:7::/64"))

    ensure()
    before = _state(ns_a), _state(ns_b)
    ensure()
    assert (_state(ns_a), _state(ns_b)) == before
    [bridge] = ip_json("-n", ns_a, "-d", "link", "show", "dev", "br0")
    assert bridge["linkinfo"]["info_data"]["mcast_snooping"] == 0
    [veth] = ip_json("-n", ns_a, "link", "show", "dev", "va")
    assert (veth["mtu"], veth["address"], veth["master"]) == (1400, "02:00:5e:10:00:0a", "br0")
    routes = {r["dst"]: r for r in ip_json("-n", ns_b, "-6", "route")}
    assert routes["fd00:7::/64"]["type"] == "blackhole"
    assert routes["fd00:8::/64"]["gateway"] == "fd00:9::1"
    [default] = ip_json("-n", ns_b, "-4", "route", "show", "default")
    assert default["gateway"] == "10.9.0.1"
    forwarding = subprocess.run(
        ["ip", "netns", "exec", ns_a, "sysctl", "-n", "net.ipv6.conf.all.forwarding"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert forwarding.stdout.strip() == "1"
    assert a.delete_link("va") is True
    assert a.delete_link("va") is False
    assert b.link("vb") is None  # the pair went together
    assert nl.delete_netns(ns_b) is True
    assert nl.delete_netns(ns_b) is False


def test_errors_name_the_object_and_the_namespace(
    make_netns: Callable[[], str], kernels: Callable[[str], Kernel]
) -> None:
    netns = make_netns()
    kernel = kernels(netns)
    with pytest.raises(KernelError, match=f"interface nosuch0 in network namespace '{netns}'"):
        kernel.set_link("nosuch0", mtu=1400)
    kernel.ensure_bridge("br0", 1500)
    with pytest.raises(KernelError, match=r"interface br0 .* is a bridge, not a veth"):
        kernel.ensure_veth("br0", "peer0", netns)
    with pytest.raises(KernelError, match=f"network namespace '{TAG}missing'"):
        Kernel(f"{TAG}missing").link("lo")
    assert not os.path.exists(f"/run/netns/{TAG}missing")  # looking never creates one
    with pytest.raises(KernelError, match=f"features of nosuch0 in network namespace '{netns}'"):
        Features(netns).get("nosuch0")
    with pytest.raises(KernelError, match=r"sysctl net\.nosuch\.key"):
        nl.ensure_sysctl(netns, "net.nosuch.key", 1)


def test_a_vxlan_over_ipv6_carries_frames_and_is_not_remade(
    make_netns: Callable[[], str], kernels: Callable[[str], Kernel]
) -> None:
    ns_a, ns_b = make_netns(), make_netns()
    a, b = kernels(ns_a), kernels(ns_b)
    a.ensure_veth("eth0", "eth0", ns_b)
    ends = {ns_a: "fd00:77::1", ns_b: "fd00:77::2"}
    for kernel, here, there, inner in ((a, ns_a, ns_b, "10.78.0.1"), (b, ns_b, ns_a, "10.78.0.2")):
        kernel.set_link("eth0", mtu=1570)
        kernel.ensure_address("eth0", ipaddress.ip_interface(f"{ends[here]}/64"))
        tunnel = Vxlan(
            42, ipaddress.ip_address(ends[here]), ipaddress.ip_address(ends[there]), "eth0"
        )
        assert kernel.ensure_vxlan("vx0", tunnel) is True
        assert kernel.ensure_vxlan("vx0", tunnel) is False
        kernel.set_link("vx0", mtu=1570 - tunnel.overhead)
        kernel.ensure_address("vx0", ipaddress.ip_interface(f"{inner}/24"))
    [link] = ip_json("-n", ns_a, "-d", "link", "show", "dev", "vx0")
    data = link["linkinfo"]["info_data"]
    assert (link["mtu"], data["id"], data["local6"], data["remote6"], data["port"]) == (
        1500,
        42,
        "fd00:77::1",
        "fd00:77::2",
        4789,
    )
    ping = [
        "ip",
        "netns",
        "exec",
        ns_a,
        "ping",
        "-c1",
        "-W2",
        "-M",
        "do",
        "-s",
        "1472",
        "10.78.0.2",
    ]
    assert subprocess.run(ping, capture_output=True).returncode == 0  # 1500 octets, unfragmented
    other = Vxlan(
        43, ipaddress.ip_address("fd00:77::1"), ipaddress.ip_address("fd00:77::3"), "eth0"
    )
    with pytest.raises(KernelError, match=f"vxlan vx0 in network namespace '{ns_a}': .*id, group6"):
        a.ensure_vxlan("vx0", other)
    with pytest.raises(KernelError, match=r"interface eth0 .* is a veth, not a vxlan"):
        a.ensure_vxlan("eth0", other)


def test_neighbour_events_arrive(
    make_netns: Callable[[], str], kernels: Callable[[str], Kernel]
) -> None:
    ns_a, ns_b = make_netns(), make_netns()
    a, b = kernels(ns_a), kernels(ns_b)
    a.ensure_veth("va", "vb", ns_b)
    a.set_link("va", mac="02:00:5e:10:00:0a")
    b.set_link("vb", mac="02:00:5e:10:00:0b")
    a.ensure_address("va", ipaddress.ip_interface("fd00:9::1/64"))
    b.ensure_address("vb", ipaddress.ip_interface("fd00:9::2/64"))
    events = NeighbourEvents(ns_a)
    try:
        hop = ipaddress.IPv6Address("fd00:9::2")
        assert a.neighbour(hop, "va") is None
        subprocess.run(
            ["ip", "netns", "exec", ns_a, "ping", "-6", "-c1", "-W2", str(hop)],
            capture_output=True,
            check=False,
        )
        index = a.index("va")
        seen: list[object] = []
        deadline = time.monotonic() + 10
        wanted = Neighbour(index, hop, bytes.fromhex("02005e10000b"))
        while wanted not in seen and time.monotonic() < deadline:
            select.select([events], [], [], 0.5)
            seen += events.read()
        assert wanted in seen
        assert a.neighbour(hop, "va") == wanted.mac
        a.ensure_blackhole(ipaddress.ip_network("fd00:6::/64"))
        deadline = time.monotonic() + 10
        while RoutesChanged() not in seen and time.monotonic() < deadline:
            select.select([events], [], [], 0.5)
            seen += events.read()
        assert RoutesChanged() in seen
        subprocess.run(["ip", "-n", ns_a, "neigh", "flush", "dev", "va"], check=True)
        deadline = time.monotonic() + 10
        gone = Neighbour(index, hop, None)
        while gone not in seen and time.monotonic() < deadline:
            select.select([events], [], [], 0.5)
            seen += events.read()
        assert gone in seen
    finally:
        events.close()


def test_features_change_without_a_fork_per_interface(
    make_netns: Callable[[], str], kernels: Callable[[str], Kernel]
) -> None:
    netns = make_netns()
    kernel = kernels(netns)
    names = [f"v{i}" for i in range(8)]
    for name in names:
        kernel.ensure_veth(name, f"p{name}", netns)
    features = Features(netns)
    try:
        started = time.monotonic()
        for name in names:
            after = features.set(name, {"generic-receive-offload": True})
            assert after["generic-receive-offload"] is True
        elapsed = time.monotonic() - started
    finally:
        features.close()
    [link] = ip_json("-n", netns, "link", "show", "dev", names[0])
    assert link["ifname"] == names[0]
    assert elapsed < 2.0, f"{elapsed:.2f} s for {len(names)} interfaces"


def test_the_helper_holds_nothing_of_ours_and_outlives_a_thread(
    make_netns: Callable[[], str],
) -> None:
    netns = make_netns()
    home = os.stat("/proc/self/ns/net").st_ino
    helper.close()
    read_end, write_end = os.pipe()  # a pipe the helper must not keep open
    try:
        worker = threading.Thread(target=lambda: Kernel(netns).link("lo"))
        worker.start()
        worker.join()  # the helper was forked by that thread, which has ended
        assert helper._helper is not None
        held = os.listdir(f"/proc/{helper._helper.pid}/fd")
        assert sorted(map(int, held)) == [0, 1, 2, sorted(map(int, held))[-1]]
        with Kernel(netns) as kernel:  # works again, with a new helper if it had to be
            assert kernel.index("lo") == 1
        assert os.stat("/proc/self/ns/net").st_ino == home
    finally:
        os.close(read_end)
        os.close(write_end)
        helper.close()
